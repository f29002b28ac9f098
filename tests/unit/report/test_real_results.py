"""The figures and reports read what the patching, probe and discovery stages write."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from mesainterp.discovery.circuit import Circuit
from mesainterp.patching.results import PatchResult, build_table
from mesainterp.report import build_report, load_run, sections_from_run, write_run
from mesainterp.sites.site import Site
from mesainterp.viz import circuit_graph, patching_heatmap, probe_curves, probe_heatmap


def _patch_result() -> PatchResult:
    sites = [Site(kind="resid_pre", layer=layer, head=None, pos=None) for layer in range(2)]
    sites += [
        Site(kind="z", layer=layer, head=head, pos=None) for layer in range(2) for head in range(2)
    ]
    sites += [
        Site(kind="resid_post", layer=layer, head=None, pos=pos)
        for layer in range(2)
        for pos in range(3)
    ]
    k = len(sites)
    values = torch.linspace(-1, 1, k)
    table = build_table(sites, values, values - 0.1, values + 0.1, values, n=16)
    return PatchResult(
        table=table,
        sites=sites,
        patched=torch.zeros(k, 16),
        clean=torch.ones(16),
        corrupted=torch.zeros(16),
        provenance={"seed": 0, "command": ["mesainterp", "patch"]},
    )


def test_patching_tables_with_nullable_columns_draw():
    table = _patch_result().table
    assert str(table["position"].dtype) == "Int64"
    whole = patching_heatmap(table, kind="resid_pre")  # sites over every position: one column
    assert list(whole.data[0].x) == ["all"] and np.asarray(whole.data[0].z).shape == (2, 1)
    heads = patching_heatmap(table, kind="z", x="head")
    assert np.asarray(heads.data[0].z).shape == (2, 2)
    by_pos = patching_heatmap(table, kind="resid_post")
    assert np.asarray(by_pos.data[0].z).shape == (2, 3)


def test_a_saved_patch_result_directory_is_a_run(tmp_path):
    _patch_result().save(tmp_path / "patch")
    run = load_run(tmp_path / "patch")
    assert run.command == ["mesainterp", "patch"] and run.results[0].kind == "patching"
    page = build_report(run, interactive=False)
    assert page.count("<svg") >= 3  # resid_pre, z, resid_post


def _probe_table() -> pd.DataFrame:
    rows = []
    for layer in range(3):
        for hook in ("hook_resid_mid", "hook_resid_post"):
            rows.append(
                {
                    "layer": layer,
                    "pos": 7,
                    "hook": f"blocks.{layer}.{hook}",
                    "target": "w",
                    "kind": "ridge",
                    "metric": "r2",
                    "value": 0.3 * layer - 0.2,
                    "se": 0.05,
                    "random_init": float("nan"),
                    "random_init_se": float("nan"),
                    "shuffled": -0.1,
                    "shuffled_se": 0.02,
                    "majority": 0.0,
                }
            )
    return pd.DataFrame(rows)


def test_probe_tables_with_hooks_and_r2():
    table = _probe_table()
    fig = probe_curves(table)
    assert [t.meta for t in fig.data if t.name == "probe"] == [
        "pos 7 · hook_resid_mid",
        "pos 7 · hook_resid_post",
    ]
    assert fig.layout.yaxis.title.text == "r2" and fig.layout.yaxis.range is None
    grid = probe_heatmap(table, hook="blocks.1.hook_resid_post")
    assert np.asarray(grid.data[0].z).shape == (1, 1)
    every_layer = probe_heatmap(table, hook="hook_resid_post")
    assert np.asarray(every_layer.data[0].z).shape == (3, 1)


def test_circuit_documents_draw_and_report(tmp_path):
    circuit = Circuit.from_edges(
        {
            ("embed", "L0H1.v"): 0.5,
            ("L0H1", "M1.in"): -0.3,
            ("M1", "logits"): 0.9,
            ("pos_embed", "L0H1.k"): 0.2,
        },
        method="eap",
    )
    doc = circuit.to_dict() | {"faithfulness": 0.8}
    fig = circuit_graph(
        doc["nodes"],
        doc["edges"],
        [e["score"] for e in doc["edges"]],
        faithfulness=doc["faithfulness"],
    )
    assert list(fig.layout.xaxis.ticktext) == ["embed", "L0", "L1", "output"]
    circuit.save(tmp_path / "circuit.json")
    write_run(
        tmp_path,
        command=["mesainterp", "search"],
        provenance={},
        results=[{"name": "c", "kind": "circuit", "path": "circuit.json"}],
    )
    page = build_report(tmp_path, interactive=False)
    assert "Circuit (eap)" in page and "L0H1.v" in page


def test_probe_tables_with_several_hooks_report_one_grid_per_hook(tmp_path):
    table = pd.concat([_probe_table(), _probe_table().assign(pos=8)], ignore_index=True)
    table.to_csv(tmp_path / "probes.csv", index=False)
    write_run(
        tmp_path,
        command=[],
        provenance={},
        results=[{"name": "p", "kind": "probes", "path": "probes.csv"}],
    )
    titles = [s.title for s in sections_from_run(load_run(tmp_path))]
    assert titles == [
        "Probe: w",
        "Probe: w: layer × position (hook_resid_mid)",
        "Probe: w: layer × position (hook_resid_post)",
    ]
