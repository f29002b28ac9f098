"""Patching, probe, scatter and circuit figures draw exactly what they are given."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
from matplotlib.figure import Figure

from mesainterp.errors import ConfigError
from mesainterp.viz import (
    align_sites,
    attribution_scatter,
    attribution_scatter_mpl,
    circuit_graph,
    circuit_graph_mpl,
    patching_heatmap,
    patching_heatmap_mpl,
    probe_curves,
    probe_curves_mpl,
    probe_heatmap,
)
from mesainterp.viz.circuit import circuit_layout
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
    assert isinstance(patching_heatmap_mpl(heads, x="head"), Figure)
    with pytest.raises(ConfigError, match="several kinds"):
        patching_heatmap(table)
    with pytest.raises(ConfigError, match="select one position"):
        patching_heatmap(table, kind="attn_head", x="head")
    with pytest.raises(ConfigError, match="lacks column"):
        patching_heatmap(table.drop(columns="ci_low"), kind="resid_pre")
    with pytest.raises(ConfigError, match="allowed"):
        patching_heatmap(table, kind="nope")


def test_patching_mpl_marks_cells_whose_interval_excludes_zero():
    table = example_patching_table()
    rows = table[table["kind"] == "resid_pre"]
    fig = patching_heatmap_mpl(rows, position_labels=[f"t{i}" for i in range(6)])
    marks = fig.axes[0].collections[0].get_offsets()
    expected = int(((rows["ci_low"] > 0) | (rows["ci_high"] < 0)).sum())
    assert len(marks) == expected
    assert fig.axes[0].get_xticklabels()[2].get_text() == "2:t2"


def test_probe_curves_show_every_position_and_the_three_controls():
    table = example_probe_table()
    fig = probe_curves(table, target="goal")
    names = [t.name for t in fig.data]
    assert names == ["pos 4", "pos 5", "random-init", "shuffled", "majority"]
    pos5 = table[table["pos"] == 5].sort_values("layer")
    assert list(fig.data[1].y) == pytest.approx(list(pos5["value"]))
    assert list(fig.data[1].error_y.array) == pytest.approx(list(1.96 * pos5["se"]))
    one = probe_curves(table, target="goal", pos=4)
    assert one.data[0].name == "pos 4" and len(one.data) == 4
    assert isinstance(probe_curves_mpl(table), Figure)
    assert np.asarray(probe_heatmap(table).data[0].z).shape == (4, 2)
    with pytest.raises(ConfigError, match="position 9"):
        probe_curves(table, pos=9)


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
    static = attribution_scatter_mpl(merged["exact"], merged["attribution"])
    assert "Pearson" in static.axes[0].get_title()


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
    assert isinstance(
        circuit_graph_mpl(CIRCUIT_NODES, CIRCUIT_EDGES, scores, faithfulness=0.875), Figure
    )
    with pytest.raises(ConfigError, match="one score per edge"):
        circuit_graph(CIRCUIT_NODES, CIRCUIT_EDGES, [1.0])
    with pytest.raises(ConfigError, match="not among the nodes"):
        circuit_graph(CIRCUIT_NODES, [("L0H1", "L9H9")], [1.0])
