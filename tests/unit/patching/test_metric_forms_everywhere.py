"""Every analysis that takes a metric accepts TransformerLens's `metric(logits)` as well as
the toolkit's `metric(logits, batch)`, with identical results."""

from __future__ import annotations

import pytest
import torch

from mesainterp import Circuit, acdc, edge_attribution, faithfulness, node_attribution, path_patch
from mesainterp.model import model_shape
from mesainterp.sites import Site, head_sites


def _two_arg(logits, batch):
    return logits[:, -1, 1] - logits[:, -1, 2]


def _one_arg(logits):
    return logits[:, -1, 1] - logits[:, -1, 2]


@pytest.fixture
def inputs(tiny_config):
    gen = torch.Generator().manual_seed(1)
    clean = torch.randint(0, tiny_config.d_vocab, (4, 6), generator=gen)
    corrupted = torch.randint(0, tiny_config.d_vocab, (4, 6), generator=gen)
    return clean, corrupted


def test_node_and_edge_attribution(tiny_model, inputs):
    clean, corrupted = inputs
    sites = head_sites(model_shape(tiny_model))
    a = node_attribution(tiny_model, sites, clean=clean, corrupted=corrupted, metric=_two_arg)
    b = node_attribution(tiny_model, sites, clean=clean, corrupted=corrupted, metric=_one_arg)
    assert torch.equal(a.scores, b.scores)
    e1 = edge_attribution(tiny_model, clean=clean, corrupted=corrupted, metric=_two_arg)
    e2 = edge_attribution(tiny_model, clean=clean, corrupted=corrupted, metric=_one_arg)
    assert torch.equal(e1.scores, e2.scores)


def test_acdc_faithfulness_and_path_patching(tiny_model, inputs):
    clean, corrupted = inputs
    kw = {"clean": clean, "corrupted": corrupted}
    r1 = acdc(tiny_model, metric=_two_arg, threshold=0.05, progress=False, **kw)
    r2 = acdc(tiny_model, metric=_one_arg, threshold=0.05, progress=False, **kw)
    assert r1.final_metric == r2.final_metric and r1.kept == r2.kept
    circuit = Circuit.from_edges(
        {("L0H0", "logits"): 1.0, ("embed", "L0H0.v"): 1.0}, method="manual"
    )
    f1 = faithfulness(
        tiny_model, circuit, metric=_two_arg, ablations=("zero",), progress=False, **kw
    )
    f2 = faithfulness(
        tiny_model, circuit, metric=_one_arg, ablations=("zero",), progress=False, **kw
    )
    assert f1 == f2
    senders = [Site(kind="z", layer=0, head=0)]
    receivers = [Site(kind="logits")]
    p1 = path_patch(tiny_model, senders, receivers, metric=_two_arg, n_boot=10, **kw)
    p2 = path_patch(tiny_model, senders, receivers, metric=_one_arg, n_boot=10, **kw)
    assert torch.equal(p1.patched, p2.patched)
    assert p2.provenance["patching"]["metric"] == "_one_arg"


def test_a_metric_of_three_arguments_is_refused_before_any_work(tiny_model, inputs):
    clean, corrupted = inputs

    def three(logits, batch, extra):
        return logits[:, -1, 0]

    with pytest.raises(Exception, match=r"metric\(logits\) or metric\(logits, batch\)"):
        edge_attribution(tiny_model, clean=clean, corrupted=corrupted, metric=three)
    assert not any(h for hp in tiny_model.hook_dict.values() for h in hp.fwd_hooks)
