"""Patching results: a tidy table with intervals, per-example values and provenance.

A result directory holds

    results.parquet / results.csv   one row per site: kind, layer, head, position,
                                    value, ci_low, ci_high, n, raw_mean
    per_example.safetensors         patched [sites, n], clean [n], corrupted [n]
    provenance.json                 provenance, the patch spec and the metric name
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from jaxtyping import Float
from safetensors.torch import save_file
from torch import Tensor

from mesainterp.atomic import atomic_write, atomic_write_json
from mesainterp.errors import MesaInterpError
from mesainterp.shapes import shape_checked
from mesainterp.sites.site import Site

__all__ = ["PatchResult", "load_result"]

TABLE_COLUMNS = ("kind", "layer", "head", "position", "value", "ci_low", "ci_high", "n", "raw_mean")
_FILES = ("results.parquet", "results.csv", "per_example.safetensors", "provenance.json")


@dataclass(frozen=True, kw_only=True)
class PatchResult:
    """Outcome of a patching sweep. `table` has one row per site, in site order."""

    table: pd.DataFrame
    sites: list[Site]
    patched: Tensor  # [sites, n] raw per-example metric values
    clean: Tensor  # [n]
    corrupted: Tensor  # [n]
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def values(self) -> Tensor:
        """Normalised effect per site (0 = corrupted, 1 = clean)."""
        return torch.tensor(self.table["value"].to_numpy(dtype="float64"), dtype=torch.float32)

    @shape_checked
    def to_tensor(
        self, rows: str = "layer", cols: str = "position"
    ) -> tuple[Float[Tensor, "rows cols"], list[Any], list[Any]]:
        """The normalised values pivoted for plotting, e.g. layer × position or layer × head.

        Returns (tensor [len(row labels), len(col labels)], row labels, col labels);
        cells without a site are NaN. Sites must be unique on (rows, cols).
        """
        for axis in (rows, cols):
            if axis not in ("kind", "layer", "head", "position"):
                raise MesaInterpError(
                    f"to_tensor: {axis!r} is not an axis (allowed: 'kind', 'layer', 'head', 'position')"
                )
        table = self.table
        if table.duplicated(subset=[rows, cols]).any():
            raise MesaInterpError(
                f"to_tensor: several sites share a ({rows}, {cols}) cell; filter the table first"
            )
        row_labels = sorted(table[rows].dropna().unique().tolist())
        col_labels = sorted(table[cols].dropna().unique().tolist())
        out = torch.full((len(row_labels), len(col_labels)), float("nan"))
        r_index = {v: i for i, v in enumerate(row_labels)}
        c_index = {v: i for i, v in enumerate(col_labels)}
        for r, c, v in zip(table[rows], table[cols], table["value"], strict=True):
            if pd.isna(r) or pd.isna(c):
                continue
            out[r_index[r], c_index[c]] = float(v)
        return out, row_labels, col_labels

    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write Parquet, CSV, per-example safetensors and a provenance JSON sidecar.

        Each file is written atomically (temp file, fsync, rename), so an interrupted
        save leaves every file either complete or absent.
        """
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        tensors = {
            "patched": self.patched.contiguous().float(),
            "clean": self.clean.contiguous().float(),
            "corrupted": self.corrupted.contiguous().float(),
        }
        atomic_write(path / "results.parquet", lambda t: self.table.to_parquet(t, index=False))
        atomic_write(path / "results.csv", lambda t: self.table.to_csv(t, index=False))
        atomic_write(path / "per_example.safetensors", lambda t: save_file(tensors, str(t)))
        atomic_write_json(path / "provenance.json", self.provenance)
        return path


def _site_from_row(row: Any) -> Site:
    head = None if pd.isna(row["head"]) else int(row["head"])
    pos = None if pd.isna(row["position"]) else int(row["position"])
    # from_dict checks the kind against SiteKind, so a table's strings need no cast.
    return Site.from_dict(
        {"kind": str(row["kind"]), "layer": int(row["layer"]), "head": head, "pos": pos}
    )


def load_result(directory: str | os.PathLike[str]) -> PatchResult:
    """Read a directory written by `PatchResult.save`."""
    path = Path(directory)
    missing = [name for name in _FILES if not (path / name).is_file()]
    if missing:
        raise MesaInterpError(f"{path}: not a patching result (missing {', '.join(missing)})")
    from mesainterp.safe_read import read_json, read_parquet, read_safetensors

    table = read_parquet(path / "results.parquet")
    for column in ("head", "position"):
        table[column] = table[column].astype("Int64")
    tensors = read_safetensors(path / "per_example.safetensors")
    provenance = read_json(path / "provenance.json")
    return PatchResult(
        table=table,
        sites=[_site_from_row(row) for _, row in table.iterrows()],
        patched=tensors["patched"],
        clean=tensors["clean"],
        corrupted=tensors["corrupted"],
        provenance=provenance,
    )


def build_table(
    sites: list[Site], values: Tensor, low: Tensor, high: Tensor, raw_mean: Tensor, n: int
) -> pd.DataFrame:
    """The tidy table, with nullable integer head/position columns."""
    table = pd.DataFrame(
        {
            "kind": [s.kind for s in sites],
            "layer": [s.layer for s in sites],
            "head": pd.array([s.head for s in sites], dtype="Int64"),
            "position": pd.array([s.pos for s in sites], dtype="Int64"),
            "value": values.double().numpy(),
            "ci_low": low.double().numpy(),
            "ci_high": high.double().numpy(),
            "n": [n] * len(sites),
            "raw_mean": raw_mean.double().numpy(),
        }
    )
    return table[list(TABLE_COLUMNS)]
