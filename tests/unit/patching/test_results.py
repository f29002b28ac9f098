"""Metrics, normalisation, bootstrap intervals and saved results."""

from __future__ import annotations

import json

import pytest
import torch

from mesainterp.errors import MesaInterpError
from mesainterp.model import model_shape
from mesainterp.patching import (
    answer_logprob,
    bootstrap_normalised,
    exact_path_accuracy,
    load_result,
    logit_diff,
    neg_kl_to_clean,
    normalised_effect,
    patch,
)
from mesainterp.sites import head_sites, resid_sites
from tests.unit.patching._helpers import SEQ, make_inputs, make_model


def test_metrics_on_known_logits() -> None:
    logits = torch.zeros(2, 3, 4)
    logits[0, 2, 1] = 2.0
    logits[1, 1, 3] = 1.0
    pos = torch.tensor([2, 1])
    ld = logit_diff(pos, torch.tensor([1, 3]), torch.tensor([0, 0]))(logits, None)
    assert torch.allclose(ld, torch.tensor([2.0, 1.0]))
    lp = answer_logprob(pos, torch.tensor([1, 3]))(logits, None)
    expected = torch.stack(
        [
            torch.log_softmax(torch.tensor([0.0, 2, 0, 0]), -1)[1],
            torch.log_softmax(torch.tensor([0.0, 0, 0, 1]), -1)[3],
        ]
    )
    assert torch.allclose(lp, expected)
    kl = neg_kl_to_clean(logits, pos)
    assert torch.allclose(kl(logits, None), torch.zeros(2), atol=1e-7)
    assert (kl(torch.zeros_like(logits), None) < 0).all()
    assert neg_kl_to_clean(logits)(logits, None).abs().max() < 1e-7
    targets = torch.tensor([[-100, -100, 1], [-100, 3, -100]])
    acc = exact_path_accuracy(targets, targets != -100)(logits, None)
    assert acc.tolist() == [1.0, 1.0]
    targets[1, 1] = 2
    assert exact_path_accuracy(targets, targets != -100)(logits, None).tolist() == [1.0, 0.0]
    with pytest.raises(MesaInterpError, match="targets"):
        exact_path_accuracy()(logits, None)


def test_normalisation_and_bootstrap() -> None:
    g = torch.Generator().manual_seed(1)
    clean = 3 + torch.randn(40, generator=g)
    corrupted = torch.randn(40, generator=g)
    patched = torch.stack([corrupted, clean, (clean + corrupted) / 2])
    effect = normalised_effect(patched, clean, corrupted)
    assert torch.allclose(effect, torch.tensor([0.0, 1.0, 0.5]), atol=1e-6)
    low, high = bootstrap_normalised(patched, clean, corrupted, n_boot=300, seed=7)
    again = bootstrap_normalised(patched, clean, corrupted, n_boot=300, seed=7)
    assert torch.equal(low, again[0]) and torch.equal(high, again[1])
    assert ((low <= effect + 1e-6) & (effect - 1e-6 <= high)).all()
    # Exact-clean and exact-corrupted sites have degenerate intervals.
    assert abs(float(low[1]) - 1) < 1e-6 and abs(float(high[0])) < 1e-6
    with pytest.raises(MesaInterpError, match="confidence"):
        bootstrap_normalised(patched, clean, corrupted, confidence=1.5)
    assert normalised_effect(patched, clean, clean).isnan().all()


def test_result_table_tensor_view_and_round_trip(tmp_path) -> None:
    model = make_model()
    clean, corrupted, metric = make_inputs()
    shape = model_shape(model)
    sites = resid_sites(shape, seq_len=SEQ) + head_sites(shape)
    result = patch(
        model, sites, clean=clean, corrupted=corrupted, metric=metric, n_boot=100,
        model_name="tiny", metric_name="logit_diff",
    )  # fmt: skip
    table = result.table
    assert list(table.columns) == [
        "kind", "layer", "head", "position", "value", "ci_low", "ci_high", "n", "raw_mean"
    ]  # fmt: skip
    assert len(table) == len(sites) and (table["n"] == clean.shape[0]).all()
    assert table["head"].isna().sum() == len(sites) - len(head_sites(shape))
    assert (
        (table["ci_low"] <= table["value"] + 1e-6) & (table["value"] <= table["ci_high"] + 1e-6)
    ).all()
    resid = result.__class__(
        table=table[table["kind"] == "resid_pre"], sites=result.sites, patched=result.patched,
        clean=result.clean, corrupted=result.corrupted,
    )  # fmt: skip
    grid, rows, cols = resid.to_tensor("layer", "position")
    assert grid.shape == (shape.n_layers, SEQ) and rows == [0, 1] and cols == list(range(SEQ))
    heads = table[table["kind"] == "z"]
    grid, _, _ = result.__class__(
        table=heads,
        sites=[],
        patched=result.patched,
        clean=result.clean,
        corrupted=result.corrupted,
    ).to_tensor("layer", "head")
    assert grid.shape == (shape.n_layers, shape.n_heads)
    with pytest.raises(MesaInterpError, match="share"):
        result.to_tensor("layer", "kind")
    prov = result.provenance
    assert prov["model_fingerprint"].startswith("sha256:")
    assert prov["patching"]["method"] == "fast" and prov["patching"]["metric"] == "logit_diff"

    out = result.save(tmp_path / "res")
    assert sorted(p.name for p in out.iterdir()) == [
        "per_example.safetensors", "provenance.json", "results.csv", "results.parquet"
    ]  # fmt: skip
    json.loads((out / "provenance.json").read_text())
    loaded = load_result(out)
    assert loaded.sites == result.sites
    assert torch.equal(loaded.patched, result.patched.float())
    assert loaded.table["value"].tolist() == pytest.approx(table["value"].tolist())
    assert loaded.table["head"].isna().sum() == table["head"].isna().sum()
    with pytest.raises(MesaInterpError, match="not a patching result"):
        load_result(tmp_path)
