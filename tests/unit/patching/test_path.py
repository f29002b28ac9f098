"""Path patching against a hand computation on a tiny model."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mesainterp.errors import ConfigError, MesaInterpError
from mesainterp.patching import PatchSpec, Receiver, count_hooks, path_patch, run_path_sweep
from mesainterp.sites import Site
from tests.unit.patching._helpers import make_inputs, make_model

TOL = 1e-4
DH = 12


@pytest.fixture(scope="module")
def setup():
    model = make_model()
    clean, corrupted, metric = make_inputs()
    names = ["blocks.0.attn.hook_z", "blocks.1.hook_resid_pre", "blocks.1.hook_resid_post"]
    with torch.no_grad():
        _, c = model.run_with_cache(clean, names_filter=lambda n: n in names)
        _, k = model.run_with_cache(corrupted, names_filter=lambda n: n in names)
    sd = model.state_dict()
    # Direct effect of L0H0 on the residual: its z difference through its slice of W_O.
    dz = (c["blocks.0.attn.hook_z"] - k["blocks.0.attn.hook_z"])[:, :, 0]
    delta = dz @ sd["blocks.0.attn.o.weight"][:, :DH].t()
    return model, clean, corrupted, metric, sd, k, delta


def _ln(x, sd, prefix):
    return F.layer_norm(x, (x.shape[-1],), sd[prefix + ".weight"], sd[prefix + ".bias"], eps=1e-5)


def test_head_to_query_matches_hand_computation(setup) -> None:
    model, clean, corrupted, metric, sd, k, delta = setup
    resid = k["blocks.1.hook_resid_pre"] + delta
    q = (
        _ln(resid, sd, "blocks.1.ln1") @ sd["blocks.1.attn.q.weight"].t()
        + sd["blocks.1.attn.q.bias"]
    )
    q = q.view(*q.shape[:2], 2, DH)

    def set_q(act, hook):
        act = act.clone()
        act[:, :, 1] = q[:, :, 1]
        return act

    with torch.no_grad():
        expected = metric(
            model.run_with_hooks(corrupted, fwd_hooks=[("blocks.1.attn.hook_q", set_q)]), None
        )
    got = run_path_sweep(
        model, [Site(kind="z", layer=0, head=0)], [Receiver(kind="q", layer=1, head=1)],
        clean=clean, corrupted=corrupted, metric=metric,
    )  # fmt: skip
    assert (got.patched[0] - expected).abs().max() <= TOL


def test_head_to_logits_matches_hand_computation(setup) -> None:
    model, clean, corrupted, metric, sd, k, delta = setup
    final = k["blocks.1.hook_resid_post"] + delta
    logits = _ln(final, sd, "ln_final") @ sd["unembed.weight"].t() + sd["unembed.bias"]
    got = run_path_sweep(
        model, [Site(kind="z", layer=0, head=0)], [Receiver(kind="logits")],
        clean=clean, corrupted=corrupted, metric=metric,
    )  # fmt: skip
    assert (got.patched[0] - metric(logits, None)).abs().max() <= TOL


def test_last_mlp_into_logits_equals_plain_patching(setup) -> None:
    # The last MLP reaches the metric only through the logits, so path patching it
    # into the logits must equal plain activation patching.
    model, clean, corrupted, metric, *_ = setup
    got = run_path_sweep(
        model, [Site(kind="mlp_out", layer=1)], [Receiver(kind="logits")],
        clean=clean, corrupted=corrupted, metric=metric,
    )  # fmt: skip
    from mesainterp.patching import run_sweep

    plain = run_sweep(
        model, [Site(kind="mlp_out", layer=1)], clean=clean, corrupted=corrupted, metric=metric
    )
    assert (got.patched - plain.patched).abs().max() <= TOL


def test_path_patch_result_and_hygiene(setup) -> None:
    model, clean, corrupted, metric, *_ = setup
    before = count_hooks(model)
    result = path_patch(
        model,
        [Site(kind="z", layer=0, head=h) for h in range(2)] + [Site(kind="mlp_out", layer=0)],
        [Receiver(kind="k", layer=1, head=0), Receiver(kind="mlp_in", layer=1)],
        clean=clean, corrupted=corrupted, metric=metric, n_boot=50,
    )  # fmt: skip
    assert list(result.table["kind"]) == ["z", "z", "mlp_out"]
    assert result.provenance["patching"]["kind"] == "path"
    assert count_hooks(model) == before


def test_receivers_are_validated(setup) -> None:
    model, clean, corrupted, metric, *_ = setup
    with pytest.raises(ConfigError, match=r"^kind: got 'o' for a receiver \(allowed: 'q'"):
        Receiver(kind="o", layer=1, head=0)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="head"):
        Receiver(kind="q", layer=1)
    with pytest.raises(MesaInterpError, match="not downstream"):
        run_path_sweep(
            model, [Site(kind="z", layer=1, head=0)], [Receiver(kind="q", layer=1, head=0)],
            clean=clean, corrupted=corrupted, metric=metric,
        )  # fmt: skip
    with pytest.raises(MesaInterpError, match="sender"):
        run_path_sweep(
            model, [Site(kind="resid_pre", layer=0)], [Receiver(kind="logits")],
            clean=clean, corrupted=corrupted, metric=metric,
        )  # fmt: skip


def test_receivers_are_sites(setup) -> None:
    model, clean, corrupted, metric, *_ = setup
    senders = [Site(kind="z", layer=0, head=1), Site(kind="mlp_out", layer=0)]
    common = {"clean": clean, "corrupted": corrupted, "metric": metric}
    via_receiver = run_path_sweep(
        model, senders, [Receiver(kind="v", layer=1, head=1), Receiver(kind="mlp_in", layer=1)],
        **common,
    )  # fmt: skip
    via_site = run_path_sweep(
        model, senders, [Site(kind="v", layer=1, head=1), Site(kind="mlp_in", layer=1)], **common
    )
    assert Receiver(kind="logits") == Site(kind="logits")
    assert torch.equal(via_receiver.patched, via_site.patched)
    # The receivers are graph nodes too: the edges they end are named the same way.
    assert [Site(kind="v", layer=1, head=1).node_name, Site(kind="mlp_in", layer=1).node_name] == [
        "L1H1.v",
        "M1.in",
    ]


@pytest.mark.parametrize(
    ("receiver", "message"),
    [
        (Site(kind="z", layer=1, head=0), r"receivers\[0\] \(L1H0 z\): kind 'z' is not where"),
        (Site(kind="q", layer=1, head=0, pos=2), r"spans every position"),
        (Site(kind="mlp_in", layer=5), r"layer out of range \(allowed: 0..1\)"),
        (Site(kind="k", layer=1, head=7), r"head out of range \(allowed: 0..1\)"),
    ],
)
def test_receiver_sites_are_checked_before_any_forward(setup, receiver: Site, message) -> None:
    model, clean, corrupted, metric, *_ = setup
    before = count_hooks(model)
    with pytest.raises(MesaInterpError, match=message):
        run_path_sweep(
            model, [Site(kind="z", layer=0, head=0)], [receiver],
            clean=clean, corrupted=corrupted, metric=metric,
        )  # fmt: skip
    assert count_hooks(model) == before


@pytest.mark.parametrize("ablation", ["resample", "mean", "zero"])
def test_inputs_of_different_shapes_are_refused(setup, ablation, no_runtime_check) -> None:
    """Before any forward, for every ablation (zero ablation used to return numbers
    normalised between runs of different lengths)."""
    model, clean, corrupted, metric, *_ = setup
    with pytest.raises(MesaInterpError, match="clean and corrupted inputs differ in shape"):
        run_path_sweep(
            model, [Site(kind="z", layer=0, head=0)], [Receiver(kind="logits")],
            clean=clean, corrupted=corrupted[:, :-1], metric=metric,
            spec=PatchSpec(ablation=ablation),
        )  # fmt: skip
