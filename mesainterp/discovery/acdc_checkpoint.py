"""ACDC's progress in a state file, so a stopped or killed search continues where it was.

ACDC decides edges one after another, each decision reading the cuts before it, so
its whole state is small: the cut mask, the damages so far, the current metric, the
counters, and a cursor (the downstream input `node` being visited and the upstream
`edge` to try next; decisions are made in decreasing order of both). The file is
written atomically (temp file, fsync, rename): after a SIGKILL it holds the last
saved state, and replaying from there makes the same decisions, since every trial
is a deterministic function of the cuts, so the result equals the uninterrupted one.

The file records what it decides (`key`: the inputs, threshold, ablation and options,
and the full model's metric, which changes with any weight); a file from another
search is refused, never continued.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import Tensor

from mesainterp.atomic import atomic_write
from mesainterp.errors import MesaInterpError

__all__ = ["AcdcProgress", "acdc_key", "load_progress", "save_progress"]

_FORMAT = "mesainterp.acdc-progress/1"


@dataclass(kw_only=True)
class AcdcProgress:
    """Where an ACDC search stands. `node`: the downstream index being visited (-1:
    done); `edge`: decisions in that node are made for upstream indices < `edge`."""

    key: str
    cut: Tensor  # bool [n_upstream, n_downstream]
    damages: Tensor  # float [n_upstream, n_downstream], NaN = not decided
    current: float
    full: float
    n_runs: int
    n_skipped: int
    node: int
    edge: int

    @property
    def done(self) -> bool:
        return self.node < 0


def _digest(t: Tensor) -> str:
    return hashlib.sha256(t.detach().cpu().contiguous().numpy().tobytes()).hexdigest()[:16]


def acdc_key(
    *, clean: Tensor, corrupted: Tensor, full: float, names: Any, options: dict[str, Any]
) -> str:
    """What a search decides: inputs, graph, options and the full model's metric."""
    text = json.dumps(
        {
            "clean": [list(clean.shape), _digest(clean)],
            "corrupted": [list(corrupted.shape), _digest(corrupted)],
            "full": repr(float(full)),
            "names": names,
            "options": options,
        },
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def save_progress(path: str | os.PathLike[str], p: AcdcProgress) -> Path:
    """Write the state atomically (floats kept exactly: metadata holds their repr)."""
    tensors = {"cut": p.cut.to(torch.uint8).cpu(), "damages": p.damages.float().cpu()}
    meta = {
        "format": _FORMAT, "key": p.key, "current": repr(p.current), "full": repr(p.full),
        "n_runs": str(p.n_runs), "n_skipped": str(p.n_skipped), "node": str(p.node),
        "edge": str(p.edge),
    }  # fmt: skip
    return atomic_write(path, lambda temp: save_file(tensors, str(temp), metadata=meta))


def load_progress(path: str | os.PathLike[str], *, key: str) -> AcdcProgress | None:
    """The saved state (None if there is no file); refuses a file of another search."""
    p = Path(path)
    if not p.is_file():
        return None
    try:
        with safe_open(str(p), framework="pt") as handle:
            meta = handle.metadata() or {}
            cut = handle.get_tensor("cut").bool()
            damages = handle.get_tensor("damages")
        if meta.get("format") != _FORMAT:
            raise ValueError(f"format {meta.get('format')!r}, expected {_FORMAT!r}")
        progress = AcdcProgress(
            key=meta["key"], cut=cut, damages=damages, current=float(meta["current"]),
            full=float(meta["full"]), n_runs=int(meta["n_runs"]),
            n_skipped=int(meta["n_skipped"]), node=int(meta["node"]), edge=int(meta["edge"]),
        )  # fmt: skip
    except (OSError, ValueError, KeyError, SafetensorError) as err:
        raise MesaInterpError(f"{p}: unreadable ACDC state file ({err})") from None
    if progress.key != key:
        raise MesaInterpError(
            f"{p}: the ACDC state file belongs to another search (other inputs, model, "
            "threshold or options); delete it or give another state path"
        )
    return progress
