"""Lens and direct logit attribution on every model family, against exact oracles.

- The logit lens at the last stage is the model's own logits (every family).
- DLA: the parts plus the bias term add up to the logit difference (checked inside,
  and here), and on the gpt2 family the frozen-scale LayerNorm is recomputed by hand
  from the module's weight and bias. On the planted-circuit model, whose unembedding
  reads only L1H0's output, L1H0 carries the whole logit difference.
- Tuned lens: on held-out inputs its KL to the final distribution is at most the
  logit lens's at every stage, and zero at the last.
"""

from __future__ import annotations

import pytest
import torch

from mesainterp.discovery.planted import planted_model, planted_pair
from mesainterp.errors import MesaInterpError
from mesainterp.mechanism import (
    accumulated_resid,
    compare_lenses,
    direct_logit_attribution,
    logit_lens,
)
from mesainterp.patching.fast_arch import unwrap
from tests.families import ALL_FAMILIES, family_bridge

VOCAB = 50


def _tokens(seed: int, n: int = 6, seq: int = 8) -> torch.Tensor:
    return torch.randint(0, VOCAB, (n, seq), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("family", ALL_FAMILIES)
def test_logit_lens_last_stage_is_the_models_logits(family: str) -> None:
    model = family_bridge(family)
    tokens = _tokens(0)
    lens = logit_lens(model, tokens)
    with torch.no_grad():
        logits = model(tokens)
    assert lens.shape == (model.cfg.n_layers + 1, *logits.shape)
    torch.testing.assert_close(lens[-1], logits, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("family", [f for f in ALL_FAMILIES if f != "gemma2"])
def test_dla_parts_sum_to_the_logit_difference(family: str) -> None:
    model = family_bridge(family)
    tokens = _tokens(1)
    g = torch.Generator().manual_seed(2)
    a, b = torch.randint(0, VOCAB, (6,), generator=g), torch.randint(0, VOCAB, (6,), generator=g)
    pos = torch.tensor([7, 6, 5, 7, 3, 7])
    dla = direct_logit_attribution(model, tokens, pos, a, b)
    torch.testing.assert_close(dla.values.sum(0) + dla.bias, dla.total, atol=1e-4, rtol=1e-4)
    n_heads = model.cfg.n_heads
    assert sum(name.startswith("L0H") for name in dla.names) == n_heads
    with torch.no_grad():
        logits = model(tokens)
    rows = torch.arange(6)
    torch.testing.assert_close(dla.total, logits[rows, pos, a] - logits[rows, pos, b])


def test_dla_frozen_layernorm_matches_a_hand_computation() -> None:
    model = family_bridge("gpt2")
    tokens = _tokens(3)
    pos = torch.full((6,), 7)
    a, b = torch.zeros(6, dtype=torch.long), torch.ones(6, dtype=torch.long)
    dla = direct_logit_attribution(model, tokens, pos, a, b)
    _, resid = accumulated_resid(model, tokens)
    final = resid[-1, :, 7]  # [batch, d]
    ln = unwrap(model.ln_final)
    w_u = unwrap(model.unembed).weight  # [vocab, d]
    centred = final - final.mean(-1, keepdim=True)
    scale = (centred.pow(2).mean(-1, keepdim=True) + ln.eps).sqrt()
    embed = resid[0, :, 7]
    embed_part = (embed - embed.mean(-1, keepdim=True)) / scale * ln.weight
    direction = w_u[0] - w_u[1]
    expected = embed_part @ direction
    torch.testing.assert_close(dla.values[dla.names.index("embed")], expected, atol=1e-5, rtol=1e-4)


def test_dla_on_the_planted_circuit_puts_everything_on_l1h0() -> None:
    model = planted_model()
    case = planted_pair(16)
    pos = torch.full((16,), case.clean.shape[1] - 1)
    dla = direct_logit_attribution(model, case.clean, pos, case.clean[:, 0], case.corrupted[:, 0])
    l1h0 = dla.values[dla.names.index("L1H0")]
    torch.testing.assert_close(l1h0, dla.total)
    others = [v for name, v in zip(dla.names, dla.values, strict=True) if name != "L1H0"]
    assert float(torch.stack(others).abs().max()) < 1e-6
    assert float(dla.total.abs().min()) > 0.01  # the test is not vacuous


def test_dla_refuses_soft_capped_logits() -> None:
    with pytest.raises(MesaInterpError, match="soft-caps"):
        direct_logit_attribution(
            family_bridge("gemma2"),
            _tokens(0),
            torch.full((6,), 7),
            torch.zeros(6, dtype=torch.long),
        )


def test_tuned_lens_beats_logit_lens_on_held_out_inputs() -> None:
    model = family_bridge("native-gpt2")
    result = compare_lenses(model, _tokens(4, n=64, seq=16), _tokens(5, n=32, seq=16))
    n = model.cfg.n_layers + 1
    assert len(result.logit_lens_kl) == len(result.tuned_lens_kl) == n
    assert result.tuned_lens_kl[-1] < 1e-4 and result.logit_lens_kl[-1] < 1e-6
    for plain, tuned in zip(result.logit_lens_kl[:-1], result.tuned_lens_kl[:-1], strict=True):
        assert tuned <= plain
    assert result.tuned_lens_kl[0] < 0.9 * result.logit_lens_kl[0]
