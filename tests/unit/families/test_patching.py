"""Exact patching on every architecture family agrees with the naive one-forward-per-site oracle."""

from __future__ import annotations

import warnings

import pytest
import torch

from mesainterp import patch
from mesainterp.model import model_shape
from mesainterp.patching import run_sweep
from mesainterp.patching.stacked import PatchingFallbackWarning
from mesainterp.sites import Site, attn_out_sites, head_sites, mlp_sites, resid_sites
from tests.families import ALL_FAMILIES, pair_inputs
from tests.unit.patching._helpers import naive_sweep

TOL = 1e-4
SEQ = 5


def every_site(model, seq: int) -> list[Site]:
    shape = model_shape(model)
    kinds = ["resid_pre", "resid_post"] + ([] if shape.parallel_attn_mlp else ["resid_mid"])
    sites = [s for kind in kinds for s in resid_sites(shape, seq_len=seq, kind=kind)]
    sites += attn_out_sites(shape, seq_len=seq) + mlp_sites(shape, seq_len=seq)
    for kind in ("z", "q", "k", "v", "pattern"):
        sites += head_sites(shape, seq_len=seq, kind=kind, by_pos=True)
    sites += [*head_sites(shape, kind="k"), Site(kind="resid_pre", layer=1)]
    return sites


@pytest.mark.parametrize("family", ALL_FAMILIES)
def test_patch_matches_the_naive_oracle(bridges, family: str) -> None:
    model = bridges[family]
    clean, corrupted, metric = pair_inputs(batch=2, seq=SEQ, differ_at=(1, 3))
    sites = every_site(model, SEQ)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = patch(model, sites, clean=clean, corrupted=corrupted, metric=metric, n_boot=10)
    oracle = naive_sweep(model, sites, base=corrupted, source=clean, metric=metric)
    assert (result.patched - oracle).abs().max() <= TOL
    fell_back = [w for w in caught if issubclass(w.category, PatchingFallbackWarning)]
    reason = result.provenance["patching"]["fallback_reason"]
    if result.provenance["patching"]["method"] == "hooks":
        # Visible, once per call, and recorded.
        assert len(fell_back) == 1 and reason and reason in str(fell_back[0].message)
    else:
        assert not fell_back and reason is None


@pytest.mark.parametrize("family", ["llama", "native-llama", "neox"])
def test_noising_with_pairs_that_differ_everywhere(bridges, family: str) -> None:
    model = bridges[family]
    clean, corrupted, metric = pair_inputs(batch=3, seq=SEQ, seed=1)
    shape = model_shape(model)
    sites = resid_sites(shape, seq_len=SEQ) + head_sites(shape, seq_len=SEQ, kind="v", by_pos=True)
    values = run_sweep(model, sites, clean=clean, corrupted=corrupted, metric=metric,
                       spec=_noising())  # fmt: skip
    oracle = naive_sweep(model, sites, base=clean, source=corrupted, metric=metric)
    assert (values.patched - oracle).abs().max() <= TOL


@pytest.mark.parametrize("per_forward", [1, 3, 1000])
def test_stacking_sites_changes_no_number(bridges, per_forward: int) -> None:
    model = bridges["llama"]
    clean, corrupted, metric = pair_inputs(batch=2, seq=SEQ, seed=2)
    shape = model_shape(model)
    sites = resid_sites(shape, seq_len=SEQ, kind="resid_mid") + head_sites(
        shape, seq_len=SEQ, kind="k", by_pos=True
    )
    values = run_sweep(model, sites, clean=clean, corrupted=corrupted, metric=metric,
                       method="hooks", sites_per_forward=per_forward)  # fmt: skip
    oracle = naive_sweep(model, sites, base=corrupted, source=clean, metric=metric)
    assert (values.patched - oracle).abs().max() <= TOL


def test_the_oracle_sees_a_wrong_head(bridges) -> None:
    """The comparison can fail: patching KV head 1 is not patching KV head 0."""
    model = bridges["llama"]
    clean, corrupted, metric = pair_inputs(batch=2, seq=SEQ, seed=3)
    ours = run_sweep(model, [Site(kind="k", layer=0, head=1)], clean=clean,
                     corrupted=corrupted, metric=metric)  # fmt: skip
    other = naive_sweep(model, [Site(kind="k", layer=0, head=0)], base=corrupted, source=clean,
                        metric=metric)  # fmt: skip
    assert (ours.patched - other).abs().max() > TOL


def _noising():
    from mesainterp.patching import PatchSpec

    return PatchSpec(direction="noising")


def test_no_hooks_are_left_after_a_failing_metric(bridges) -> None:
    from mesainterp.errors import MesaInterpError
    from mesainterp.patching import count_hooks

    model = bridges["gemma2"]
    clean, corrupted, _ = pair_inputs(batch=2, seq=SEQ)
    before = count_hooks(model)
    with pytest.raises(MesaInterpError, match="one value per example"):
        run_sweep(model, resid_sites(model_shape(model), seq_len=SEQ), clean=clean,
                  corrupted=corrupted, metric=lambda logits, batch: logits.sum(), method="hooks")  # fmt: skip
    assert count_hooks(model) == before
    assert torch.equal(clean, clean)


def test_user_hooks_see_their_own_batch_size(bridges) -> None:
    """Stacking sites along the batch is switched off while someone else's hooks run."""
    model = bridges["llama"]
    clean, corrupted, metric = pair_inputs(batch=2, seq=SEQ, seed=4)
    seen: list[int] = []
    point = model.hook_dict["blocks.1.hook_resid_pre"]
    handle = point.add_hook(lambda act, hook: seen.append(int(act.shape[0])))
    try:
        sites = resid_sites(model_shape(model), seq_len=SEQ)
        values = run_sweep(model, sites, clean=clean, corrupted=corrupted, metric=metric,
                           method="hooks")  # fmt: skip
    finally:
        handle.hook.remove()
        point.fwd_hooks.clear()
    assert set(seen) == {2}
    oracle = naive_sweep(model, sites, base=corrupted, source=clean, metric=metric)
    assert (values.patched - oracle).abs().max() <= TOL


def test_stack_size_respects_the_budgets(bridges) -> None:
    from mesainterp.patching.stacked import MAX_STACK, TOKEN_BUDGET, stack_size

    model = bridges["gpt2"]
    assert stack_size(model, 2, 5, n_sites=100) == MAX_STACK
    assert stack_size(model, 2, 5, n_sites=3) == 3
    assert stack_size(model, TOKEN_BUDGET, 1, n_sites=100) == 1
    assert stack_size(model, TOKEN_BUDGET // 2, 1, n_sites=100) == 2
