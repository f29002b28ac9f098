"""The staircase: does each rank of the search's chain first clear one layer later?

Input is a `structural.StructuralTable` (or its frame). For each chain rank k
(ancestor k / node k back) and position, the first layer is the smallest layer
whose site *clears* its controls (the structural module's declared rule; None:
never). A position shows a *staircase* when every rank clears somewhere and the
first layers strictly increase with k: the k-th ancestor needs one more layer
than the (k-1)-th. `first_layer_over_baseline` also asks that the lower bound
exceed the search-free baseline's upper bound.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import pandas as pd

from mesainterp.errors import MesaInterpError
from mesainterp.mechanism.structural import StructuralTable

__all__ = ["Staircase", "staircase"]


@dataclass(frozen=True, kw_only=True)
class Staircase:
    """First clearing layer of each chain rank at each position (rule: module docstring).

    steps: rows {pos, role, rank, first_layer, first_layer_over_baseline}.
    """

    steps: tuple[dict[str, Any], ...]
    ranks: tuple[int, ...]

    def first_layers(self, pos: int) -> list[int | None]:
        """First clearing layer of ranks 1..K at `pos`, in rank order."""
        got = {s["rank"]: s["first_layer"] for s in self.steps if s["pos"] == pos}
        if not got:
            raise MesaInterpError(f"pos: no chain rows at position {pos}")
        return [got.get(k) for k in self.ranks]

    def is_staircase(self, pos: int) -> bool:
        """Every rank clears at `pos` and the first layers strictly increase with k."""
        layers = self.first_layers(pos)
        if len(layers) < 2 or any(v is None for v in layers):
            return False
        known = [int(v) for v in layers if v is not None]
        return all(b > a for a, b in itertools.pairwise(known))

    @property
    def staircase_positions(self) -> list[int]:
        return sorted({s["pos"] for s in self.steps if self.is_staircase(s["pos"])})

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(list(self.steps))

    def to_dict(self) -> dict[str, Any]:
        return {
            "ranks": list(self.ranks),
            "staircase_positions": self.staircase_positions,
            "steps": [dict(s) for s in self.steps],
        }


def _first(layers: pd.Series) -> int | None:
    return None if layers.empty else int(layers.min())


def staircase(table: StructuralTable | pd.DataFrame) -> Staircase:
    """The staircase summary of the chain quantities (rows with a rank) of `table`."""
    frame = table.to_frame() if isinstance(table, StructuralTable) else table
    chain = frame[frame["rank"].notna()] if "rank" in frame else frame.iloc[:0]
    if chain.empty:
        raise MesaInterpError("table: no chain rows (ancestor k / node k back) to summarise")
    ranks = tuple(sorted(int(k) for k in chain["rank"].unique()))
    steps = []
    for (pos, rank), group in chain.groupby(["pos", "rank"], sort=True):
        steps.append(
            {
                "pos": int(pos), "role": str(group["role"].iloc[0]), "rank": int(rank),
                "first_layer": _first(group.loc[group["clears"].astype(bool), "layer"]),
                "first_layer_over_baseline": _first(
                    group.loc[group["beats_baseline"].astype(bool), "layer"]
                ),
            }
        )  # fmt: skip
    return Staircase(steps=tuple(steps), ranks=ranks)
