"""EdgeForward against the bridge and the exact patching engine."""

from __future__ import annotations

import pytest
import torch
from transformer_lens.model_bridge import TransformerBridge

from mesainterp.attribution import EdgeForward, EdgeGraph
from mesainterp.discovery import ablated_outputs, cut_run_metric, drop_dangling
from mesainterp.errors import MesaInterpError
from mesainterp.model import ModelConfig, build_model, model_shape
from mesainterp.patching.ablation import PatchSpec
from mesainterp.patching.engine import run_sweep
from mesainterp.patching.metrics import logit_diff
from mesainterp.sites import Site


def _model(attn_only: bool):
    return build_model(
        ModelConfig(
            n_layers=2, d_model=32, n_heads=2, d_head=16, d_mlp=None if attn_only else 64,
            attn_only=attn_only, d_vocab=13, n_ctx=16, seed=3,
        )
    )  # fmt: skip


def _tokens(seed: int) -> torch.Tensor:
    return torch.randint(0, 13, (6, 9), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("attn_only", [False, True])
def test_plain_run_matches_the_bridge(attn_only: bool) -> None:
    model = _model(attn_only)
    ef = EdgeForward(model)
    tokens = _tokens(0)
    with torch.no_grad():
        run = ef.run(*ef.embed_parts(tokens))
        leafy = ef.run(*ef.embed_parts(tokens), leaves=True)
        assert torch.allclose(run.logits, model(tokens), atol=1e-5)
    assert torch.allclose(leafy.logits, run.logits, atol=1e-5)
    assert len(run.outs) == ef.graph.n_upstream


def test_graph_counts_and_order() -> None:
    shape = model_shape(_model(False))
    g = EdgeGraph.of(shape)
    assert g.upstream[:4] == ("embed", "pos_embed", "L0H0", "L0H1")
    assert g.downstream[-1] == "logits"
    assert g.n_before(g.down_index("L0H0.q")) == 2
    assert g.n_before(g.down_index("M0.in")) == 4  # embeddings + layer-0 heads
    assert g.n_before(g.down_index("L1H1.v")) == 5
    assert len(g.edges()) == int(g.valid_mask().sum())
    assert g.edges_of(g.mask_of(g.edges()[:3])) == sorted(
        g.edges()[:3], key=lambda e: (g.down_index(e[1]), g.up_index(e[0]))
    )


@pytest.mark.parametrize("attn_only", [False, True])
def test_cutting_every_edge_gives_the_corrupted_run(attn_only: bool) -> None:
    model = _model(attn_only)
    ef = EdgeForward(model)
    clean, corrupted = _tokens(0), _tokens(1)
    with torch.no_grad():
        ablated = ablated_outputs(ef, "resample", corrupted=corrupted)
        run = ef.run(*ef.embed_parts(clean), cut=ef.graph.valid_mask(), ablated=ablated)
        assert torch.allclose(run.logits, model(corrupted), atol=1e-5)


def test_restart_at_a_layer_equals_the_full_run() -> None:
    model = _model(False)
    ef = EdgeForward(model)
    g = ef.graph
    clean, corrupted = _tokens(0), _tokens(1)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        ablated = ablated_outputs(ef, "resample", corrupted=corrupted)
        tok, pos = ef.embed_parts(clean)
        base = ef.run(tok, pos)
        for start in range(g.n_layers + 1):
            late = torch.tensor([layer >= start for layer in g.down_layer])
            cut = g.valid_mask() & (torch.rand(g.valid_mask().shape, generator=gen) < 0.3) & late
            full = ef.run(tok, pos, cut=cut, ablated=ablated)
            restarted = ef.run(tok, pos, cut=cut, ablated=ablated, start_layer=start, base=base)
            assert torch.allclose(full.logits, restarted.logits, atol=1e-5)


@pytest.mark.parametrize("head", [(0, 1), (1, 0)])
def test_cutting_a_heads_outgoing_edges_equals_patching_its_z(head: tuple[int, int]) -> None:
    """Independent oracle: the patching engine's exact noising patch of one head's z."""
    model = _model(False)
    ef = EdgeForward(model)
    g = ef.graph
    clean, corrupted = _tokens(0), _tokens(1)
    answer_pos = torch.full((6,), 8)
    metric = logit_diff(answer_pos, clean[:, 8], corrupted[:, 8])
    layer, h = head
    sweep = run_sweep(
        model, [Site(kind="z", layer=layer, head=h)], clean=clean, corrupted=corrupted,
        metric=metric, spec=PatchSpec(direction="noising"), method="hooks",
    )  # fmt: skip
    cut = torch.zeros_like(g.valid_mask())
    cut[g.up_index(f"L{layer}H{h}")] = True
    cut &= g.valid_mask()
    ablated = ablated_outputs(ef, "resample", corrupted=corrupted)
    tok, pos = ef.embed_parts(clean)
    values = cut_run_metric(ef, metric, None, tok=tok, pos=pos, cut=cut, ablated=ablated)
    assert torch.allclose(values, sweep.patched[0], atol=1e-4)


def test_unsupported_models_are_refused() -> None:
    model = TransformerBridge.boot_native(  # type: ignore[attr-defined]
        {
            "n_layers": 1, "d_model": 16, "n_heads": 2, "d_head": 8, "d_mlp": 32,
            "d_vocab": 7, "n_ctx": 8, "attn_scores_soft_cap": 30.0, "seed": 0,
        }
    )  # fmt: skip
    with pytest.raises(MesaInterpError, match="attention soft-capping"):
        EdgeForward(model)


@pytest.mark.parametrize(
    ("attn_only", "norm"), [(False, "LN"), (True, "LN"), (False, "RMS"), (False, "LNPre")]
)
def test_shared_input_gradients_equal_the_split_copies(attn_only: bool, norm: str) -> None:
    """The fast gradient path (the closed-form layer-norm backward for LN, autograd's
    for the other norms) against its oracle: literal per-input residual copies."""
    model = build_model(
        ModelConfig(
            n_layers=2, d_model=32, n_heads=2, d_head=16, d_mlp=None if attn_only else 64,
            attn_only=attn_only, d_vocab=13, n_ctx=16, seed=3, normalization_type=norm,
        )
    )  # fmt: skip
    if norm == "LN":  # a non-trivial norm weight, so the folded projection is exercised
        with torch.no_grad():
            for block in model.original_model.layers:
                block.ln1.weight.uniform_(0.5, 1.5, generator=torch.Generator().manual_seed(1))
    ef = EdgeForward(model)
    clean = _tokens(0)
    answer_pos = torch.full((6,), 8)
    metric = logit_diff(answer_pos, clean[:, 8], (clean[:, 8] + 1) % 13)
    tok, pos = ef.embed_parts(clean)
    grads = []
    for split in (False, True):
        run = ef.run(tok, pos, leaves=True, split_leaves=split)
        grads.append(ef.leaf_grads(run, metric(run.logits, None).sum()))
    assert grads[0].shape == (ef.graph.n_downstream, 6, 9, 32)
    assert torch.allclose(grads[0], grads[1], atol=1e-5)
    assert grads[0].abs().max() > 1e-3


def test_grouped_query_graph_has_one_key_value_input_per_kv_head() -> None:
    g = EdgeGraph(n_layers=2, n_heads=4, n_kv_heads=2, attn_only=False, pos_embed=False)
    layer0 = [d for d, layer in zip(g.downstream, g.down_layer, strict=True) if layer == 0]
    assert layer0 == [
        "L0H0.q", "L0H1.q", "L0H2.q", "L0H3.q", "L0KV0.k", "L0KV1.k", "L0KV0.v", "L0KV1.v",
        "M0.in",
    ]  # fmt: skip
    assert g.owners("L1KV1.v") == ("L1H2", "L1H3") and g.owners("L1H0.q") == ("L1H0",)
    assert g.upstream_of_downstream("L1KV1.v") is None
    assert g.upstream[:2] == ("embed", "L0H0")
    assert g.n_before(g.down_index("M0.in")) == 1 + 4
    parallel = EdgeGraph(n_layers=2, n_heads=4, n_kv_heads=2, attn_only=False, parallel=True)
    assert parallel.n_before(parallel.down_index("M0.in")) == 2  # the embeddings only
    with pytest.raises(MesaInterpError, match="n_kv_heads"):
        EdgeGraph(n_layers=1, n_heads=4, n_kv_heads=3, attn_only=True)


def test_a_shared_key_input_stays_while_any_reading_head_is_kept() -> None:
    g = EdgeGraph(n_layers=2, n_heads=4, n_kv_heads=2, attn_only=True)
    into_kv = ("L0H1", "L1KV0.k")  # read by L1H0 and L1H1
    kept = drop_dangling(g, {into_kv: 1.0, ("L1H1", "logits"): 1.0})
    assert into_kv in kept
    assert into_kv not in drop_dangling(g, {into_kv: 1.0, ("L1H2", "logits"): 1.0})
