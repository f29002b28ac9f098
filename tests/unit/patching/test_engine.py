from __future__ import annotations

import pytest
import torch
from transformer_lens import patching as tl_patching

from mesainterp.errors import MesaInterpError
from mesainterp.model import model_shape
from mesainterp.patching import (
    PatchSpec,
    count_hooks,
    hook_context,
    run_sweep,
    unsupported_reason,
)
from mesainterp.sites import (
    Site,
    SiteError,
    attn_out_sites,
    head_sites,
    mlp_sites,
    resid_sites,
)
from tests.unit.patching._helpers import SEQ, make_inputs, make_model, naive_sweep

TOL = 1e-4


def every_kind(model, positions: tuple[int, ...] = (0, 2, SEQ - 1)) -> list[Site]:
    """Every site kind, at a few positions (first, middle, last) and at all positions."""
    shape = model_shape(model)
    sites: list[Site] = []
    for kind in ("resid_pre", "resid_mid", "resid_post"):
        sites += resid_sites(shape, seq_len=SEQ, kind=kind)
        sites += resid_sites(shape, kind=kind, by_pos=False)
    sites += attn_out_sites(shape, seq_len=SEQ) + mlp_sites(shape, seq_len=SEQ)
    sites += mlp_sites(shape, by_pos=False)
    for kind in ("z", "q", "k", "v", "pattern"):
        sites += head_sites(shape, seq_len=SEQ, kind=kind, by_pos=True)
        sites += head_sites(shape, kind=kind)
    return [s for s in sites if s.pos is None or s.pos in positions]


@pytest.mark.parametrize("direction", ["denoising", "noising"])
def test_fast_path_matches_the_naive_hook_loop(direction: str) -> None:
    model = make_model()
    clean, corrupted, metric = make_inputs()
    sites = every_kind(model)
    ours = run_sweep(
        model, sites, clean=clean, corrupted=corrupted, metric=metric,
        spec=PatchSpec(direction=direction), method="fast",
    )  # fmt: skip
    assert ours.method == "fast"
    base, source = (corrupted, clean) if direction == "denoising" else (clean, corrupted)
    oracle = naive_sweep(model, sites, base=base, source=source, metric=metric)
    assert (ours.patched - oracle).abs().max() <= TOL


@pytest.mark.parametrize("ablation", ["zero", "mean", "pos_mean"])
def test_ablations_agree_between_back_ends(ablation: str) -> None:
    model = make_model()
    clean, corrupted, metric = make_inputs()
    sites = every_kind(model)
    spec = PatchSpec(direction="noising", ablation=ablation)
    fast = run_sweep(model, sites, clean=clean, corrupted=corrupted, metric=metric, spec=spec)
    hooks = run_sweep(
        model, sites, clean=clean, corrupted=corrupted, metric=metric, spec=spec, method="hooks"
    )
    assert fast.method == "fast" and hooks.method == "hooks"
    assert (fast.patched - hooks.patched).abs().max() <= TOL


def test_zero_ablation_oracle() -> None:
    model = make_model()
    clean, corrupted, metric = make_inputs()
    sites = [Site(kind="z", layer=1, head=0, pos=2), Site(kind="mlp_out", layer=0)]
    ours = run_sweep(
        model, sites, clean=clean, corrupted=corrupted, metric=metric,
        spec=PatchSpec(direction="noising", ablation="zero"),
    )  # fmt: skip
    # A zero source patched in is a zero ablation.
    zeros = torch.zeros(clean.shape[0], SEQ, 24)
    oracle = naive_sweep(model, sites, base=clean, source=clean, metric=metric)  # shape check only
    assert ours.patched.shape == oracle.shape
    with torch.no_grad():

        def zero_z(act, hook):
            act = act.clone()
            act[:, 2, 0] = 0
            return act

        a = metric(model.run_with_hooks(clean, fwd_hooks=[("blocks.1.attn.hook_z", zero_z)]), None)
        b = metric(
            model.run_with_hooks(
                clean, fwd_hooks=[("blocks.0.hook_mlp_out", lambda act, hook: zeros)]
            ),
            None,
        )
    assert (ours.patched[0] - a).abs().max() <= TOL
    assert (ours.patched[1] - b).abs().max() <= TOL


def _tl_metric(metric):
    return lambda logits: metric(logits, None).mean()


@pytest.mark.parametrize(
    ("tl_fn", "kind", "by_pos"),
    [
        (tl_patching.get_act_patch_resid_pre, "resid_pre", True),
        (tl_patching.get_act_patch_attn_head_out_by_pos, "z", True),
        (tl_patching.get_act_patch_mlp_out, "mlp_out", True),
        (tl_patching.get_act_patch_attn_head_out_all_pos, "z", False),
        (tl_patching.get_act_patch_attn_head_v_by_pos, "v", True),
    ],
)
def test_agrees_with_transformer_lens_patching(tl_fn, kind: str, by_pos: bool) -> None:
    model = make_model()
    clean, corrupted, metric = make_inputs()
    shape = model_shape(model)
    if kind in ("z", "v"):
        sites = head_sites(shape, seq_len=SEQ, kind=kind, by_pos=by_pos)
    elif kind == "mlp_out":
        sites = mlp_sites(shape, seq_len=SEQ)
    else:
        sites = resid_sites(shape, seq_len=SEQ, kind=kind)
    with torch.no_grad():
        _, clean_cache = model.run_with_cache(clean)
    expected = tl_fn(model, corrupted, clean_cache, _tl_metric(metric))
    ours = run_sweep(model, sites, clean=clean, corrupted=corrupted, metric=metric)
    # TL orders results layer × pos × head for heads-by-pos; ours is layer × head × pos.
    got = ours.patched.mean(dim=1)
    if kind in ("z", "v") and by_pos:
        got = got.view(shape.n_layers, shape.n_heads, SEQ).transpose(1, 2)
    assert (got.reshape(expected.shape) - expected).abs().max() <= TOL


def test_clean_into_clean_changes_nothing() -> None:
    model = make_model()
    clean, _, metric = make_inputs()
    values = run_sweep(model, every_kind(model), clean=clean, corrupted=clean, metric=metric)
    assert (values.patched - values.clean).abs().max() <= TOL


def test_whole_layer_residual_reproduces_the_source_run() -> None:
    model = make_model()
    clean, corrupted, metric = make_inputs()
    shape = model_shape(model)
    # resid_mid included: on a bridge that hook is the second LayerNorm's input, and a
    # single hook there would not carry the patch along the skip connection.
    sites = [
        site
        for kind in ("resid_pre", "resid_mid", "resid_post")
        for site in resid_sites(shape, kind=kind, by_pos=False)
    ]
    for direction, target in (("denoising", "clean"), ("noising", "corrupted")):
        values = run_sweep(
            model, sites, clean=clean, corrupted=corrupted, metric=metric,
            spec=PatchSpec(direction=direction),
        )  # fmt: skip
        expected = getattr(values, target)
        assert (values.patched - expected).abs().max() <= TOL


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"positional_embedding_type": "rotary"}, None),
        ({"attn_only": True}, None),
        ({"normalization_type": "RMS", "act_fn": "relu"}, None),
        ({"normalization_type": None}, None),
    ],
)
def test_fallback_and_other_architectures_give_the_same_numbers(overrides, reason) -> None:
    model = make_model(**overrides)
    clean, corrupted, metric = make_inputs()
    shape = model_shape(model)
    sites = resid_sites(shape, seq_len=SEQ) + head_sites(shape, seq_len=SEQ, by_pos=True)
    got_reason = unsupported_reason(model)
    assert (got_reason is None) == (reason is None)
    if reason is not None:
        assert reason in got_reason
        with pytest.raises(MesaInterpError, match=reason):
            run_sweep(model, sites, clean=clean, corrupted=corrupted, metric=metric, method="fast")
    auto = run_sweep(model, sites, clean=clean, corrupted=corrupted, metric=metric)
    assert auto.method == ("hooks" if reason else "fast")
    oracle = naive_sweep(model, sites, base=corrupted, source=clean, metric=metric)
    assert (auto.patched - oracle).abs().max() <= TOL


def test_user_hooks_force_the_hook_path_and_survive() -> None:
    model = make_model()
    clean, corrupted, metric = make_inputs()
    sites = resid_sites(model_shape(model), seq_len=SEQ)
    seen: list[int] = []
    handle = model.hook_dict["blocks.0.hook_resid_pre"].add_hook(lambda act, hook: seen.append(1))
    try:
        values = run_sweep(model, sites, clean=clean, corrupted=corrupted, metric=metric)
        assert values.method == "hooks" and "hooks are installed" in values.fallback_reason
        assert len(model.hook_dict["blocks.0.hook_resid_pre"].fwd_hooks) == 1
        assert seen  # the user's hook ran during the sweep
    finally:
        handle.hook.remove()
        model.hook_dict["blocks.0.hook_resid_pre"].fwd_hooks.clear()


def test_sweeps_leave_no_hooks_behind() -> None:
    model = make_model()
    clean, corrupted, metric = make_inputs()
    before = count_hooks(model)
    for method in ("fast", "hooks"):
        run_sweep(model, every_kind(model), clean=clean, corrupted=corrupted, metric=metric,
                  method=method)  # fmt: skip
    assert count_hooks(model) == before


def test_bad_sites_fail_before_any_forward() -> None:
    model = make_model()
    clean, corrupted, metric = make_inputs()
    calls: list[int] = []
    with (
        hook_context(model, fwd=[("hook_embed", lambda act, hook: calls.append(1))]),
        pytest.raises(SiteError, match=r"allowed: 0\.\.1"),
    ):
        run_sweep(
                model, [Site(kind="z", layer=0, head=5)],
                clean=clean, corrupted=corrupted, metric=metric,
            )  # fmt: skip
    assert calls == []


def test_metric_shape_is_checked() -> None:
    model = make_model()
    clean, corrupted, _ = make_inputs()
    with pytest.raises(MesaInterpError, match="one value per example"):
        run_sweep(
            model, [Site(kind="resid_pre", layer=0)], clean=clean, corrupted=corrupted,
            metric=lambda logits, batch: logits.sum(),
        )  # fmt: skip


def test_embedding_inputs_take_the_fast_path_exactly() -> None:
    # Continuous tasks feed embeddings; the bridge adds positional embeddings to them.
    model = make_model()
    g = torch.Generator().manual_seed(0)
    clean, corrupted = torch.randn(3, SEQ, 24, generator=g), torch.randn(3, SEQ, 24, generator=g)

    def metric(logits, batch):
        return logits[:, -1, 0]

    shape = model_shape(model)
    sites = resid_sites(shape, seq_len=SEQ) + head_sites(shape, seq_len=SEQ, by_pos=True)
    fast = run_sweep(model, sites, clean=clean, corrupted=corrupted, metric=metric)
    assert fast.method == "fast"
    oracle = naive_sweep(model, sites, base=corrupted, source=clean, metric=metric)
    assert (fast.patched - oracle).abs().max() <= TOL


def test_pairs_differing_at_one_position_match_the_oracle() -> None:
    # Sites before the differing token are no-ops and skip their forward pass.
    model = make_model()
    clean, _, metric = make_inputs()
    corrupted = clean.clone()
    corrupted[:, 3] = (clean[:, 3] + 1) % 11
    shape = model_shape(model)
    sites = resid_sites(shape, seq_len=SEQ) + head_sites(shape, seq_len=SEQ, by_pos=True)
    for method in ("fast", "hooks"):
        ours = run_sweep(
            model, sites, clean=clean, corrupted=corrupted, metric=metric, method=method
        )
        oracle = naive_sweep(model, sites, base=corrupted, source=clean, metric=metric)
        assert (ours.patched - oracle).abs().max() <= TOL
