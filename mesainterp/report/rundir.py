"""The run directory: what a command leaves behind for the report to read.

Layout (every path inside `run.json` is relative to RUN_DIR)::

    RUN_DIR/
      run.json          the manifest (below)
      *.parquet|*.csv   result tables
      *.json            circuits, attention patterns
      figures/…         pre-rendered figures (SVG or PNG), optional
      report.html       written by `mesainterp report RUN_DIR`
      figures/          static figures written by the report (PNG, SVG, PDF)

`run.json`::

    {
      "schema": "mesainterp.run/1",
      "title": "Tree-path model, goal patching",          # optional
      "command": ["mesainterp", "patch", "..."],          # argv that made the run
      "provenance": {...},                                # mesainterp.provenance()
      "results": [
        {"name": "heads", "kind": "patching", "path": "patching.parquet",
         "x": "head", "position": 41, "title": "...", "caption": "..."},
        {"name": "goal-probe", "kind": "probes", "path": "probes.csv", "target": "goal"},
        {"name": "attribution", "kind": "attribution", "path": "attribution.parquet",
         "exact": "patching.parquet"},
        {"name": "circuit", "kind": "circuit", "path": "circuit.json"},
        {"name": "attention", "kind": "attention", "path": "attention.json"},
        {"name": "overlay", "kind": "figure", "path": "figures/tree.svg"},
        {"name": "summary", "kind": "table", "path": "summary.csv"}
      ]
    }

Result kinds and the files they read:
- patching: table with kind, layer, head, position, value, ci_low, ci_high, n.
  Options: `kind` (one site kind), `x` ("position" or "head"), `position`
  (for heads at one position), `position_labels` (one string per position,
  e.g. the tokens); without `x`, head rows give layer × head and other rows
  layer × position.
- probes: table with layer, pos, target, value, se, random_init, shuffled,
  majority (optional: hook, metric). Options: `target`, `pos`, `hook`.
- attribution: a patching table of attribution estimates; `exact` names the
  exact patching table it is compared with (sites joined on kind/layer/head/position).
- circuit: JSON {"nodes": [name or {"name", "layer"}], "edges": [{"source",
  "target", "score"}] (or "edges" as pairs plus "scores"), "faithfulness": float}.
- attention: JSON {"tokens": [str], "attention": [head][query][key],
  "head_names": [str] (optional)}.
- figure: an SVG or PNG file shown as is.
- table: any .csv/.parquet table shown as a table.
- scorecard: the scorecard.json `mesainterp evidence` writes (format
  "mesainterp.scorecard"): one row per test with its value, CI, control,
  threshold and verdict.

`write_run` writes the manifest; `load_run` reads and checks it. A directory
without run.json that `PatchResult.save` wrote (results.parquet +
provenance.json) is read as a run with one patching result. Every problem is a
`RunDirError` naming the file and what was wrong.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from mesainterp.errors import MesaInterpError, allowed

__all__ = [
    "MANIFEST",
    "RESULT_KINDS",
    "SCHEMA",
    "Result",
    "Run",
    "RunDirError",
    "load_run",
    "read_table",
    "write_run",
]

MANIFEST = "run.json"
SCHEMA = "mesainterp.run/1"
RESULT_KINDS = (
    "patching", "probes", "attribution", "circuit", "attention", "figure", "table", "scorecard",
    "mechanism",
)  # fmt: skip
TABLE_SUFFIXES = (".parquet", ".csv")
# What `mesainterp.patching.PatchResult.save` writes (read without importing patching).
PATCH_TABLE = "results.parquet"
PATCH_PROVENANCE = "provenance.json"


class RunDirError(MesaInterpError):
    """A run directory or one of its files is missing or malformed."""


@dataclass(frozen=True, kw_only=True)
class Result:
    """One entry of `results`: a named file of a known kind, plus drawing options."""

    name: str
    kind: str
    path: str
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.name or not isinstance(self.name, str):
            raise RunDirError("results[].name: must be a non-empty string")
        if self.kind not in RESULT_KINDS:
            raise RunDirError(
                f"results[{self.name!r}].kind: unknown kind {self.kind!r} (allowed: {allowed(RESULT_KINDS)})"
            )
        if not self.path or Path(self.path).is_absolute() or ".." in Path(self.path).parts:
            raise RunDirError(
                f"results[{self.name!r}].path: must be a path inside the run directory, got {self.path!r}"
            )

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "path": self.path, **self.options}


@dataclass(frozen=True, kw_only=True)
class Run:
    """A loaded run directory."""

    path: Path
    title: str
    command: list[str]
    provenance: dict[str, Any]
    results: list[Result]

    def file(self, relative: str) -> Path:
        """Absolute path of a file of this run; refuses a missing file."""
        target = self.path / relative
        if not target.is_file():
            raise RunDirError(f"{target}: file named in {MANIFEST} does not exist")
        return target


def write_run(
    run_dir: str | Path,
    *,
    command: list[str],
    provenance: dict[str, Any],
    results: list[Result | dict[str, Any]],
    title: str | None = None,
) -> Path:
    """Write RUN_DIR/run.json (the result files are the caller's to write)."""
    root = Path(run_dir)
    root.mkdir(parents=True, exist_ok=True)
    entries = [r if isinstance(r, Result) else _result(r, 0) for r in results]
    manifest = {
        "schema": SCHEMA,
        "title": title or root.name,
        "command": [str(a) for a in command],
        "provenance": provenance,
        "results": [r.to_dict() for r in entries],
    }
    from mesainterp.atomic import atomic_write_json

    return atomic_write_json(root / MANIFEST, manifest, sort_keys=False)


def _result(entry: Any, index: int) -> Result:
    if not isinstance(entry, dict):
        raise RunDirError(f"results[{index}]: must be an object, got {type(entry).__name__}")
    missing = [k for k in ("name", "kind", "path") if k not in entry]
    if missing:
        raise RunDirError(f"results[{index}]: missing {allowed(missing)}")
    options = {k: v for k, v in entry.items() if k not in ("name", "kind", "path")}
    return Result(
        name=str(entry["name"]), kind=str(entry["kind"]), path=str(entry["path"]), options=options
    )


def load_run(run_dir: str | Path) -> Run:
    """Read and check RUN_DIR/run.json."""
    root = Path(run_dir)
    if not root.is_dir():
        raise RunDirError(f"{root}: not a run directory (no such directory)")
    manifest = root / MANIFEST
    if not manifest.is_file():
        if (root / PATCH_TABLE).is_file() and (root / PATCH_PROVENANCE).is_file():
            return _patch_result_run(root)
        raise RunDirError(f"{root}: not a run directory (no {MANIFEST})")
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise RunDirError(f"{manifest}: not valid JSON ({err})") from err
    if not isinstance(data, dict):
        raise RunDirError(f"{manifest}: must hold a JSON object")
    if data.get("schema") != SCHEMA:
        raise RunDirError(f"{manifest}: schema {data.get('schema')!r} is not {SCHEMA!r}")
    results = data.get("results", [])
    if not isinstance(results, list):
        raise RunDirError(f"{manifest}: 'results' must be a list")
    entries = [_result(entry, i) for i, entry in enumerate(results)]
    names = [r.name for r in entries]
    if len(set(names)) != len(names):
        raise RunDirError(f"{manifest}: result names must be unique")
    command = data.get("command", [])
    provenance = data.get("provenance", {})
    if not isinstance(command, list) or not isinstance(provenance, dict):
        raise RunDirError(f"{manifest}: 'command' must be a list and 'provenance' an object")
    return Run(
        path=root,
        title=str(data.get("title") or root.name),
        command=[str(a) for a in command],
        provenance=provenance,
        results=entries,
    )


def _patch_result_run(root: Path) -> Run:
    """A patching result directory (`PatchResult.save`) seen as a one-result run."""
    try:
        provenance = json.loads((root / PATCH_PROVENANCE).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise RunDirError(f"{root / PATCH_PROVENANCE}: not valid JSON ({err})") from err
    if not isinstance(provenance, dict):
        raise RunDirError(f"{root / PATCH_PROVENANCE}: must hold a JSON object")
    command = provenance.get("command") if isinstance(provenance.get("command"), list) else []
    return Run(
        path=root,
        title=f"Patching: {root.name}",
        command=[str(a) for a in command or []],
        provenance=provenance,
        results=[Result(name="patching", kind="patching", path=PATCH_TABLE)],
    )


def read_table(path: Path) -> pd.DataFrame:
    """A result table from .parquet or .csv."""
    if path.suffix not in TABLE_SUFFIXES:
        raise RunDirError(f"{path}: tables must be {allowed(TABLE_SUFFIXES)}")
    try:
        return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    except (OSError, ValueError) as err:
        raise RunDirError(f"{path}: cannot read table ({err})") from err
