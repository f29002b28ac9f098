"""Patching, probe, scatter and circuit figures draw exactly what they are given."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
import torch
from matplotlib.figure import Figure

from mesainterp.errors import ConfigError
from mesainterp.stats import normalised_effect
from mesainterp.viz import (
    align_sites,
    attribution_scatter,
    circuit_graph,
    patching_heatmap,
    probe_curves,
    probe_heatmap,
)
from mesainterp.viz.circuit import circuit_layout
from mesainterp.viz.patching import PATCHING_COLUMNS
from mesainterp.viz.probes import PROBE_COLUMNS
from mesainterp.viz.scatter import correlations
from tests.unit.report._example import example_patching_table, example_probe_table


def test_patching_heatmap_matches_a_cell_by_cell_oracle():
    table = example_patching_table()
    fig = patching_heatmap(table, kind="resid_pre")
    assert isinstance(fig, go.Figure)
    heat = fig.data[0]
    z = np.asarray(heat.z)
    custom = np.asarray(heat.customdata)
    rows = table[table["kind"] == "resid_pre"]
    for _, row in rows.iterrows():
        i, j = int(row["layer"]), int(row["position"])
        assert z[i, j] == pytest.approx(row["value"])
        assert custom[i, j, 0] == pytest.approx(row["ci_low"])
        assert custom[i, j, 1] == pytest.approx(row["ci_high"])
        assert custom[i, j, 2] == row["n"]
    assert "CI" in heat.hovertemplate and "customdata[1]" in heat.hovertemplate


def test_patching_heatmap_by_head_and_refusals():
    table = example_patching_table()
    heads = table[(table["kind"] == "attn_head") & (table["position"] == 5)]
    fig = patching_heatmap(heads, x="head")
    assert np.asarray(fig.data[0].z).shape == (3, 4)
    assert isinstance(patching_heatmap(heads, x="head", backend="matplotlib"), Figure)
    with pytest.raises(ConfigError, match="several kinds"):
        patching_heatmap(table)
    with pytest.raises(ConfigError, match="backend: unknown backend 'svg'"):
        patching_heatmap(heads, x="head", backend="svg")  # type: ignore[call-overload]
    with pytest.raises(ConfigError, match="lacks column"):
        patching_heatmap(table.drop(columns="ci_low"), kind="resid_pre")
    with pytest.raises(ConfigError, match="allowed"):
        patching_heatmap(table, kind="nope")


def test_patching_mpl_marks_cells_whose_interval_excludes_zero():
    table = example_patching_table()
    rows = table[table["kind"] == "resid_pre"]
    fig = patching_heatmap(rows, position_labels=[f"t{i}" for i in range(6)], backend="matplotlib")
    marks = fig.axes[0].collections[0].get_offsets()
    expected = int(((rows["ci_low"] > 0) | (rows["ci_high"] < 0)).sum())
    assert len(marks) == expected
    assert fig.axes[0].get_xticklabels()[2].get_text() == "2:t2"


def test_probe_curves_show_every_position_and_the_three_controls():
    table = example_probe_table()
    fig = probe_curves(table, target="goal")
    probes = [t for t in fig.data if t.name == "probe"]
    assert [t.meta for t in probes] == ["pos 4", "pos 5"]
    pos5 = table[table["pos"] == 5].sort_values("layer")
    assert list(probes[1].y) == pytest.approx(list(pos5["value"]))
    assert list(probes[1].error_y.array) == pytest.approx(list(1.96 * pos5["se"]))
    # Each position's panel carries that position's three controls.
    assert sorted(t.name for t in fig.data if t.meta == "pos 5") == [
        "majority", "probe", "random-init", "shuffled"
    ]  # fmt: skip
    one = probe_curves(table, target="goal", pos=4)
    assert one.data[0].meta == "pos 4" and len(one.data) == 4
    assert isinstance(probe_curves(table, backend="matplotlib"), Figure)
    assert np.asarray(probe_heatmap(table).data[0].z).shape == (4, 2)
    with pytest.raises(ConfigError, match="position 9"):
        probe_curves(table, pos=9)


def _control_table(twin_at_5: float) -> pd.DataFrame:
    """A probe table whose random-init twin matches the probe at position 5 only."""
    rows = []
    for pos in range(4, 8):
        for layer in range(3):
            twin = twin_at_5 if pos == 5 else 0.55
            rows.append((layer, pos, "goal", 0.99, 0.01, twin, 0.3, 0.25))
    return pd.DataFrame(rows, columns=list(PROBE_COLUMNS))


def _twin_line(fig: go.Figure, curve: str) -> list[float]:
    return next(list(t.y) for t in fig.data if t.name == "random-init" and t.meta == curve)


def test_controls_are_drawn_per_position_not_averaged():
    fig = probe_curves(_control_table(0.99), target="goal")
    # The twin scores as high as the probe at position 5, and the figure says so.
    assert _twin_line(fig, "pos 5") == pytest.approx([0.99] * 3)
    assert _twin_line(fig, "pos 4") == pytest.approx([0.55] * 3)
    # An average over positions would have drawn (0.99 + 3 * 0.55) / 4 = 0.66.
    assert not any(
        list(t.y) == pytest.approx([0.66] * 3) for t in fig.data if t.name == "random-init"
    )
    static = probe_curves(_control_table(0.99), target="goal", backend="matplotlib")
    panel = next(ax for ax in static.axes if ax.get_title() == "pos 5")
    twin = next(line for line in panel.get_lines() if line.get_label() == "random-init")
    assert list(twin.get_ydata()) == pytest.approx([0.99] * 3)


def test_position_labels_carry_tokens_and_roles_everywhere():
    tokens = [f"t{i}" for i in range(8)]
    roles = {5: "goal"}
    table = _control_table(0.5)
    curves = probe_curves(table, position_labels=tokens, position_roles=roles)
    assert "pos 5:t5 (goal)" in {t.meta for t in curves.data}
    grid = probe_heatmap(table, position_labels=tokens, position_roles=roles)
    assert list(grid.data[0].x) == ["4:t4", "5:t5 (goal)", "6:t6", "7:t7"]
    static = probe_heatmap(
        table, position_labels=tokens, position_roles=roles, backend="matplotlib"
    )
    assert [t.get_text() for t in static.axes[0].get_xticklabels()][1] == "5:t5 (goal)"


def _heads_by_position(n_positions: int) -> pd.DataFrame:
    rows = []
    for pos in range(n_positions):
        for layer in range(2):
            for head in range(3):
                v = 0.1 * pos + 0.01 * head
                rows.append(("attn_head", layer, head, pos, v, v - 0.05, v + 0.05, 8))
    return pd.DataFrame(rows, columns=list(PATCHING_COLUMNS))


def test_heads_by_position_shows_every_position_as_its_own_panel():
    table = _heads_by_position(9)  # more than the report used to show (6)
    roles = ["", "", "S1", "", "", "IO", "", "", "END"]
    fig = patching_heatmap(table, x="head", position_roles=roles)
    heats = [t for t in fig.data if isinstance(t, go.Heatmap)]
    assert len(heats) == 9
    titles = [a.text for a in fig.layout.annotations]
    assert titles[0] == "position 0" and titles[5] == "position 5 (IO)"
    for pos, heat in enumerate(heats):  # cell-by-cell oracle, every panel
        rows = table[table["position"] == pos]
        for _, row in rows.iterrows():
            assert np.asarray(heat.z)[int(row["layer"]), int(row["head"])] == pytest.approx(
                row["value"]
            )
    static = patching_heatmap(table, x="head", position_roles=roles, backend="matplotlib")
    assert sum(ax.get_visible() and bool(ax.images) for ax in static.axes) == 9


def test_a_long_sequence_is_split_into_panels_not_cut():
    rows = []
    for pos in range(95):
        for layer in range(2):
            rows.append(("resid_pre", layer, None, pos, 0.01 * pos, 0.0, 0.02, 8))
    table = pd.DataFrame(rows, columns=list(PATCHING_COLUMNS))
    fig = patching_heatmap(table, max_columns=40)
    shown = [x for t in fig.data for x in t.x]
    assert shown == [str(p) for p in range(95)]  # every position, in order, once
    static = patching_heatmap(table, max_columns=40, backend="matplotlib")
    ticks = [t.get_text() for ax in static.axes if ax.images for t in ax.get_xticklabels()]
    assert ticks == [str(p) for p in range(95)]


def test_attribution_is_normalised_by_the_patching_gap():
    g = torch.Generator().manual_seed(0)
    clean, corrupted = 2 + torch.randn(30, generator=g), torch.randn(30, generator=g)
    patched = torch.stack([corrupted + t * (clean - corrupted) for t in (0.0, 0.3, 1.0)])
    exact = example_patching_table().iloc[:3].copy()
    exact["value"] = normalised_effect(patched, clean, corrupted).numpy()
    attribution = exact.copy()
    attribution["value"] = (patched.mean(1) - corrupted.mean()).numpy()  # raw, as attribution is
    merged = align_sites(exact, attribution, gap=(float(clean.mean()), float(corrupted.mean())))
    assert np.allclose(merged["attribution"], merged["exact"], atol=1e-5)
    raw = align_sites(exact, attribution)
    assert not np.allclose(raw["attribution"], raw["exact"], atol=1e-2)


def test_correlations_match_numpy_and_pandas():
    rng = np.random.default_rng(0)
    a = rng.normal(size=50)
    b = a + rng.normal(scale=0.5, size=50)
    pearson, spearman = correlations(a, b)
    assert pearson == pytest.approx(np.corrcoef(a, b)[0, 1])
    assert spearman == pytest.approx(pd.Series(a).corr(pd.Series(b), method="spearman"))
    assert np.isnan(correlations([1.0, 1.0], [2.0, 3.0])[0])


def test_attribution_scatter_titles_carry_both_correlations():
    exact = example_patching_table()
    attribution = exact.copy()
    attribution["value"] = 2 * exact["value"]
    merged = align_sites(exact, attribution)
    assert len(merged) == len(exact)
    fig = attribution_scatter(merged["exact"], merged["attribution"], labels=list(merged["site"]))
    assert (
        "Pearson r = 1.000" in fig.layout.title.text
        and "Spearman ρ = 1.000" in fig.layout.title.text
    )
    static = attribution_scatter(merged["exact"], merged["attribution"], backend="matplotlib")
    assert "Pearson" in static.axes[0].get_title()
    # The old name is the matplotlib backend, not a second drawing.
    assert attribution_scatter(merged["exact"], merged["attribution"], backend="matplotlib").axes[
        0
    ].get_title() == (static.axes[0].get_title())


def test_align_sites_survives_a_csv_round_trip(tmp_path):
    exact = example_patching_table()
    exact.to_csv(tmp_path / "e.csv", index=False)
    exact.to_parquet(tmp_path / "e.parquet")
    merged = align_sites(pd.read_parquet(tmp_path / "e.parquet"), pd.read_csv(tmp_path / "e.csv"))
    assert len(merged) == len(exact)
    assert np.allclose(merged["exact"], merged["attribution"])


CIRCUIT_NODES = ["embed", "L0H1", {"name": "MLP1", "layer": 1}, "blocks.2.attn.hook_z", "logits"]
CIRCUIT_EDGES = [
    ("embed", "L0H1"),
    ("L0H1", "MLP1"),
    ("MLP1", "blocks.2.attn.hook_z"),
    ("blocks.2.attn.hook_z", "logits"),
]


def test_circuit_layout_orders_columns_by_layer():
    layout = circuit_layout(CIRCUIT_NODES, CIRCUIT_EDGES, [0.5, -1.0, 0.25, 2.0])
    xs = [layout.positions[n if isinstance(n, str) else n["name"]][0] for n in CIRCUIT_NODES]
    assert xs == sorted(xs) and len(set(xs)) == 5
    assert layout.column_labels == ["embed", "L0", "L1", "L2", "output"]


def test_circuit_graph_widths_follow_scores_and_title_has_faithfulness():
    scores = [0.5, -1.0, 0.25, 2.0]
    fig = circuit_graph(CIRCUIT_NODES, CIRCUIT_EDGES, scores, faithfulness=0.875)
    assert "faithfulness 0.875" in fig.layout.title.text
    widths = [t.line.width for t in fig.data[:4]]
    assert np.argsort(widths).tolist() == np.argsort(np.abs(scores)).tolist()
    static = circuit_graph(
        CIRCUIT_NODES, CIRCUIT_EDGES, scores, faithfulness=0.875, backend="matplotlib"
    )
    assert isinstance(static, Figure) and "faithfulness 0.875" in static.axes[0].get_title()
    with pytest.raises(ConfigError, match="one score per edge"):
        circuit_graph(CIRCUIT_NODES, CIRCUIT_EDGES, [1.0])
    with pytest.raises(ConfigError, match="not among the nodes"):
        circuit_graph(CIRCUIT_NODES, [("L0H1", "L9H9")], [1.0])
