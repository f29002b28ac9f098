"""Readers for the only file formats mesainterp loads: JSON, safetensors, Parquet.

None of them can execute code. They refuse a Python pickle (or a `torch.save`
zip, which holds one) by its leading bytes with an error naming the file, so a
malicious or mistaken file gets a clear message instead of a parser's traceback.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from mesainterp.errors import MesaInterpError

__all__ = [
    "SAFETENSORS_ERRORS",
    "looks_like_pickle",
    "read_json",
    "read_parquet",
    "read_safetensors",
    "read_text",
    "safetensors_error",
]

# Pickle protocols 2-5 start with PROTO (0x80) and the protocol number; torch.save
# writes a zip archive whose members include a pickle.
_PICKLE_HEADS = tuple(bytes([0x80, p]) for p in range(2, 6))
_ZIP_HEAD = b"PK\x03\x04"


def looks_like_pickle(head: bytes) -> bool:
    """Whether a file starting with `head` is a pickle or a torch.save archive."""
    return head.startswith(_PICKLE_HEADS) or head.startswith(_ZIP_HEAD)


def _refuse_pickle(path: Path, expected: str, error: type[MesaInterpError]) -> None:
    try:
        with open(path, "rb") as handle:
            head = handle.read(4)
    except OSError as err:
        raise error(f"{path}: cannot read ({err.strerror})") from None
    if looks_like_pickle(head):
        raise error(
            f"{path}: is a Python pickle or torch.save archive, which mesainterp never "
            f"loads (it can run code); expected {expected}"
        )


def read_text(path: str | Path, *, error: type[MesaInterpError] = MesaInterpError) -> str:
    """A UTF-8 text file (JSON, TOML, CSV), refusing pickles and binary data."""
    p = Path(path)
    _refuse_pickle(p, "a UTF-8 text file", error)
    try:
        return p.read_bytes().decode("utf-8")
    except UnicodeDecodeError as err:
        raise error(f"{p}: not a UTF-8 text file ({err.reason} at byte {err.start})") from None
    except OSError as err:
        raise error(f"{p}: cannot read ({err.strerror})") from None


def read_json(path: str | Path, *, error: type[MesaInterpError] = MesaInterpError) -> Any:
    """A JSON document."""
    p = Path(path)
    text = read_text(p, error=error)
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise error(f"{p}: not valid JSON ({err})") from None


def read_safetensors(
    path: str | Path, *, error: type[MesaInterpError] = MesaInterpError
) -> dict[str, torch.Tensor]:
    """All tensors of a safetensors file."""
    p = Path(path)
    try:
        return load_file(str(p))
    except SAFETENSORS_ERRORS as err:
        raise safetensors_error(p, err, error=error) from None


# What safetensors raises on a file it cannot read.
SAFETENSORS_ERRORS = (SafetensorError, OSError, ValueError)


def safetensors_error(
    path: str | Path, err: Exception, *, error: type[MesaInterpError] = MesaInterpError
) -> MesaInterpError:
    """The error to raise for a safetensors file that failed to open with `err`."""
    p = Path(path)
    # Checked only after a failure: a safetensors header length can begin 0x80 0x02.
    _refuse_pickle(p, "a safetensors file", error)
    return error(f"{p}: not a readable safetensors file ({err})")


def read_parquet(path: str | Path, *, error: type[MesaInterpError] = MesaInterpError) -> Any:
    """A Parquet table."""
    p = Path(path)
    _refuse_pickle(p, "a Parquet file", error)
    try:
        return pd.read_parquet(p)
    except (OSError, ValueError) as err:
        raise error(f"{p}: not a readable Parquet file ({err})") from None
