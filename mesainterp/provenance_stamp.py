"""Provenance: the stamp every saved result carries so it can be traced and cited."""

from __future__ import annotations

import datetime as _dt
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

from mesainterp._version import __version__
from mesainterp.model.fingerprinting import fingerprint

__all__ = ["git_commit", "provenance"]


def _version_of(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def git_commit(path: str | Path | None = None) -> str | None:
    """The commit of the git checkout holding `path` (default: this package), if any.

    A dirty work tree is marked with a ``+dirty`` suffix so a result is never
    attributed to a commit that does not contain the code that made it.
    """
    where = Path(path) if path is not None else Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(where), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(where), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{commit}+dirty" if dirty else commit or None


def provenance(
    *,
    model: torch.nn.Module | None = None,
    model_fingerprint: str | None = None,
    model_name: str | None = None,
    config: dict[str, Any] | None = None,
    seed: int | None = None,
    command: list[str] | None = None,
) -> dict[str, Any]:
    """The provenance block: versions, model fingerprint, config, seed, git commit.

    Pass either the model (fingerprinted here) or a fingerprint already computed.

    >>> stamp = mesainterp.provenance(model_fingerprint="sha256:abc", seed=0, config={"k": 1})
    >>> stamp["model_fingerprint"], stamp["seed"], stamp["config"]
    ('sha256:abc', 0, {'k': 1})
    >>> sorted(k for k in stamp if k.endswith("_version"))[:2]
    ['mesainterp_version', 'python_version']
    """
    if model is not None and model_fingerprint is None:
        model_fingerprint = fingerprint(model)
    return {
        "mesainterp_version": __version__,
        "torch_version": torch.__version__,
        "transformer_lens_version": _version_of("transformer-lens"),
        "python_version": platform.python_version(),
        "model_name": model_name,
        "model_fingerprint": model_fingerprint,
        "config": config,
        "seed": seed,
        "git_commit": git_commit(),
        "command": command if command is not None else None,
        "created_utc": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "platform": f"{sys.platform}-{platform.machine()}",
    }
