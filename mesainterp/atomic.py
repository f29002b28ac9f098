"""Atomic file writes (a leaf module: stdlib only): a reader, or a resumed run, sees the old
file or the new one, never half.

Every write goes to a temporary file in the same directory (so the rename never
crosses a file system), is flushed and fsynced, renamed over the target with
`os.replace`, and then the directory is fsynced so the rename itself survives a
power cut. A process killed mid-write leaves at most a stray temporary file,
whose name starts with `TMP_PREFIX`; `remove_stale_temps` clears them.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = [
    "TMP_PREFIX",
    "atomic_write",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "fsync_dir",
    "remove_stale_temps",
]

TMP_PREFIX = ".tmp-"


def fsync_dir(directory: str | os.PathLike[str]) -> None:
    """Flush a directory entry (a rename) to disk; a no-op where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some file systems refuse fsync on directories
        pass
    finally:
        os.close(fd)


def _temp_path(target: Path) -> Path:
    # Keep the suffix last: writers such as matplotlib pick the format from it.
    return target.with_name(f"{TMP_PREFIX}{secrets.token_hex(4)}-{target.name}")


def atomic_write(path: str | os.PathLike[str], write: Callable[[Path], Any]) -> Path:
    """Run `write(temp_path)` (any writer that takes a path), then move the result onto `path`."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = _temp_path(target)
    try:
        write(temp)
        with open(temp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(temp, target)
    except BaseException:
        # KeyboardInterrupt included: leave no temp behind on the way out.
        temp.unlink(missing_ok=True)
        raise
    fsync_dir(target.parent)
    return target


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    return atomic_write(path, lambda temp: temp.write_bytes(data))


def atomic_write_text(path: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> Path:
    return atomic_write_bytes(path, text.encode(encoding))


def atomic_write_json(path: str | os.PathLike[str], obj: Any, *, sort_keys: bool = True) -> Path:
    text = json.dumps(obj, indent=2, sort_keys=sort_keys, default=str) + "\n"
    return atomic_write_text(path, text)


def remove_stale_temps(directory: str | os.PathLike[str]) -> list[Path]:
    """Delete temporaries a killed writer left under `directory` (recursively)."""
    root = Path(directory)
    if not root.is_dir():
        return []
    stale = [p for p in root.rglob(f"{TMP_PREFIX}*") if p.is_file()]
    for p in stale:
        p.unlink(missing_ok=True)
    return stale
