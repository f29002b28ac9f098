"""The resumable state of a run directory: its identity and the units already done.

Layout inside the run directory::

    _run/manifest.json          {"schema", "identity", "complete"}
    _run/units/KEY.safetensors  one finished unit: tensors + JSON metadata

Each unit file is written atomically when the unit finishes, so a run killed at
any moment loses at most the units in flight. `open_run` refuses a non-empty
directory unless resuming, and refuses to resume a run whose identity (command,
model fingerprint, config) differs from the saved one, naming the fields.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from safetensors import safe_open
from safetensors.torch import save_file
from torch import Tensor

from mesainterp.atomic import atomic_write, atomic_write_json, remove_stale_temps
from mesainterp.errors import MesaInterpError

__all__ = ["STATE_DIR", "RunDirNotEmpty", "RunMismatch", "RunState", "identity_diff", "open_run"]

STATE_DIR = "_run"
_SCHEMA = "mesainterp.runstate/1"


class RunDirNotEmpty(MesaInterpError):
    """The output directory already holds files and --resume was not given."""


class RunMismatch(MesaInterpError):
    """A resumed run's identity differs from the one saved in its directory."""


def identity_diff(saved: Any, current: Any, prefix: str = "") -> list[str]:
    """Dotted paths where two JSON-like values differ (keys present in only one included)."""
    if isinstance(saved, dict) and isinstance(current, dict):
        out: list[str] = []
        for key in sorted(set(saved) | set(current), key=str):
            path = f"{prefix}.{key}" if prefix else str(key)
            if key not in saved or key not in current:
                out.append(path)
            else:
                out.extend(identity_diff(saved[key], current[key], path))
        return out
    return [] if saved == current else [prefix or "<root>"]


def _canonical(obj: Any) -> Any:
    # Round-trip through JSON so tuples, paths and numbers compare as they are saved.
    return json.loads(json.dumps(obj, sort_keys=True, default=str))


@dataclass(frozen=True)
class RunState:
    """Handle on a run directory's saved units."""

    root: Path
    identity: dict[str, Any]

    @property
    def units_dir(self) -> Path:
        return self.root / STATE_DIR / "units"

    def _unit_path(self, key: str) -> Path:
        return self.units_dir / f"{key}.safetensors"

    def has(self, key: str) -> bool:
        return self._unit_path(key).is_file()

    def done_keys(self) -> set[str]:
        if not self.units_dir.is_dir():
            return set()
        return {p.name.removesuffix(".safetensors") for p in self.units_dir.glob("*.safetensors")}

    def save_unit(
        self, key: str, tensors: dict[str, Tensor], meta: dict[str, Any] | None = None
    ) -> Path:
        data = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
        metadata = {"meta": json.dumps(meta or {}, sort_keys=True, default=str)}
        return atomic_write(
            self._unit_path(key), lambda temp: save_file(data, str(temp), metadata=metadata)
        )

    def load_unit(self, key: str) -> tuple[dict[str, Tensor], dict[str, Any]]:
        path = self._unit_path(key)
        try:
            with safe_open(str(path), framework="pt") as handle:
                tensors = {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118
                meta = json.loads((handle.metadata() or {}).get("meta", "{}"))
        except (OSError, ValueError, json.JSONDecodeError) as err:
            raise MesaInterpError(f"{path}: unreadable unit result ({err})") from None
        return tensors, meta

    def mark_complete(self) -> None:
        _write_manifest(self.root, self.identity, complete=True)


def _write_manifest(root: Path, identity: dict[str, Any], *, complete: bool) -> None:
    atomic_write_json(
        root / STATE_DIR / "manifest.json",
        {"schema": _SCHEMA, "identity": identity, "complete": complete},
    )


def open_run(
    directory: str | os.PathLike[str], *, identity: dict[str, Any], resume: bool
) -> RunState:
    """Create or reopen a run directory; nothing is written before the checks pass."""
    root = Path(directory)
    identity = _canonical(identity)
    manifest = root / STATE_DIR / "manifest.json"
    non_empty = root.is_dir() and any(root.iterdir())
    if root.exists() and not root.is_dir():
        raise MesaInterpError(f"--out: {root} exists and is not a directory")
    if non_empty and not resume:
        raise RunDirNotEmpty(
            f"--out: {root} is not empty; pass --resume to continue the run saved there, "
            "or choose a new directory"
        )
    if non_empty and resume:
        if not manifest.is_file():
            raise RunDirNotEmpty(
                f"--resume: {root} holds no resumable run ({STATE_DIR}/manifest.json missing)"
            )
        try:
            saved = json.loads(manifest.read_text())["identity"]
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise MesaInterpError(f"{manifest}: unreadable run manifest ({err})") from None
        differs = identity_diff(saved, identity)
        if differs:
            shown = ", ".join(differs[:8]) + (" ..." if len(differs) > 8 else "")
            raise RunMismatch(
                f"--resume: the run in {root} was made with a different {shown}; "
                "use a new --out or the original arguments"
            )
        remove_stale_temps(root)
    else:
        _write_manifest(root, identity, complete=False)
    return RunState(root=root, identity=identity)
