"""The staircase figure: one line per chain rank with its control band, both backends."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import pytest
from matplotlib.figure import Figure

from mesainterp.errors import MesaInterpError
from mesainterp.viz.staircase import staircase_figure, staircase_panels


def _row(quantity: str, rank: int | None, pos: int, layer: int, value: float) -> dict:
    return {
        "quantity": quantity, "rank": rank, "metric": "accuracy",
        "free": "the token at that position" if quantity == "current node" else "",
        "layer": layer, "pos": pos, "role": "goal" if pos == 5 else "answer step 0",
        "value": value, "ci_low": value - 0.05, "ci_high": value + 0.05, "chance": 0.1,
        "control": 0.2, "control_high": 0.3, "baseline": 0.25,
        "clears": value - 0.05 > 0.3,
    }  # fmt: skip


def _table() -> pd.DataFrame:
    """Ranks 1..3 rise at layers 1, 2, 3 at pos 6; nothing clears at pos 5."""
    rows = []
    for layer in range(4):
        for k in (1, 2, 3):
            rows.append(_row(f"ancestor {k}", k, 6, layer, 1.0 if layer >= k else 0.2))
            rows.append(_row(f"ancestor {k}", k, 5, layer, 0.2))
        rows.append(_row("current node", None, 6, layer, 1.0))
    return pd.DataFrame(rows)


def test_plotly_draws_one_line_per_rank_with_its_band() -> None:
    fig = staircase_figure(_table())
    assert isinstance(fig, go.Figure)
    lines = [t for t in fig.data if t.mode == "lines+markers"]
    assert [t.name for t in lines] == ["ancestor 1", "ancestor 2", "ancestor 3", "current node"]
    assert list(lines[1].y) == [0.2, 0.2, 1.0, 1.0]  # rank 2 rises at layer 2
    bands = [t for t in fig.data if t.fill == "toself"]
    assert len(bands) == 4
    titles = [a.text for a in fig.layout.annotations]
    assert titles == ["ancestor k, k = 1..3", "current node (free: the token at that position)"]
    assert "position 6 (answer step 0)" in fig.layout.title.text  # where the chain clears most


def test_matplotlib_and_a_chosen_position() -> None:
    fig = staircase_figure(_table(), pos=5, quantities=["ancestor 1", "ancestor 2"],
                           backend="matplotlib")  # fmt: skip
    assert isinstance(fig, Figure)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(visible) == 1 and len(visible[0].get_legend().get_texts()) == 2
    pos, role, panels = staircase_panels(_table(), pos=5)
    assert (pos, role, [len(lines) for _, lines in panels]) == (5, "goal", [3])


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(MesaInterpError, match="pos"):
        staircase_figure(_table(), pos=99)
    with pytest.raises(MesaInterpError, match="quantities"):
        staircase_figure(_table(), quantities=["grandparent"])
    with pytest.raises(MesaInterpError, match="backend"):
        staircase_figure(_table(), backend="bokeh")  # type: ignore[call-overload]
    with pytest.raises(MesaInterpError, match="table"):
        staircase_figure(_table().drop(columns=["control_high"]))
