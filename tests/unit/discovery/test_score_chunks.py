"""Attribution scores split over chunks of examples equal the scores of one chunk."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from mesainterp.discovery.config import SearchConfig
from mesainterp.discovery.search import chunk_scores, find_circuit, prepare, score_ranges
from mesainterp.errors import MesaInterpError
from mesainterp.tasks.base import slice_pair


def _plans(checkpoint, **search):
    whole = prepare(SearchConfig(checkpoint=str(checkpoint), n_examples=8, **search))
    chunked = dataclasses.replace(
        whole, config=dataclasses.replace(whole.config, score_chunk=3)
    )  # the same model and pairs, scored in 3 uneven chunks
    return whole, chunked


def test_score_ranges_cover_the_examples_in_order() -> None:
    config = SearchConfig(zoo="x", top_n=3, n_examples=8)
    assert score_ranges(config) == [(0, 8)]
    assert score_ranges(dataclasses.replace(config, score_chunk=3)) == [(0, 3), (3, 6), (6, 8)]
    assert score_ranges(dataclasses.replace(config, score_chunk=8)) == [(0, 8)]
    assert score_ranges(dataclasses.replace(config, score_chunk=50)) == [(0, 8)]
    assert score_ranges(SearchConfig(zoo="x", method="acdc", threshold=0.1)) == []


def test_a_slice_of_the_pair_gives_the_metric_of_its_examples(tiny_checkpoint) -> None:
    plan = prepare(SearchConfig(checkpoint=str(tiny_checkpoint), top_n=3, n_examples=8))
    logits = torch.randn(8, plan.task.seq_len, plan.task.d_vocab_out)
    whole = plan.task.default_metric(plan.pair)(logits, plan.pair.clean)
    part = slice_pair(plan.pair, 3, 6)
    assert part.clean.batch_size == part.corrupted.batch_size == 3
    assert torch.equal(part.answer_pos, plan.pair.answer_pos[3:6])
    assert part.clean.instances == plan.pair.clean.instances[3:6]
    assert torch.equal(plan.task.default_metric(part)(logits[3:6], part.clean), whole[3:6])
    for bad in ((0, 0), (5, 3), (-1, 2), (0, 9)):
        with pytest.raises(MesaInterpError, match="slice_pair"):
            slice_pair(plan.pair, *bad)


@pytest.mark.parametrize(
    "search",
    [
        {"method": "eap", "top_n": 10},
        {"method": "eap", "top_n": 10, "metric": "kl"},
        {"method": "eap-ig", "top_n": 10, "ig_steps": 2},
        {"method": "node-attribution", "top_n": 3},
    ],
    ids=["eap", "eap-kl", "eap-ig", "node-attribution"],
)
def test_chunked_scores_equal_the_unchunked_ones(tiny_checkpoint, search) -> None:
    whole, chunked = _plans(tiny_checkpoint, **search)
    ranges = score_ranges(chunked.config)
    assert len(ranges) == 3
    one = chunk_scores(whole, 0, 8)["per_example"]
    parts = [chunk_scores(chunked, a, b)["per_example"] for a, b in ranges]
    assert [p.shape[-1] for p in parts] == [3, 3, 2]
    torch.testing.assert_close(torch.cat(parts, dim=-1), one, rtol=1e-5, atol=1e-7)

    circuit, ranking = find_circuit(chunked)
    expected, expected_ranking = find_circuit(whole)
    assert circuit.edge_set == expected.edge_set
    assert set(ranking) == set(expected_ranking)
    for edge, score in expected.edges.items():
        assert circuit.edges[edge] == pytest.approx(score, rel=1e-5, abs=1e-7), edge
    # Handing find_circuit the chunks it would compute gives the same circuit exactly.
    again, again_ranking = find_circuit(chunked, chunks=[{"per_example": p} for p in parts])
    assert again.edges == circuit.edges and again_ranking == ranking


def test_chunks_that_do_not_cover_the_examples_are_refused(tiny_checkpoint) -> None:
    _, chunked = _plans(tiny_checkpoint, method="eap", top_n=10)
    first = chunk_scores(chunked, 0, 3)
    with pytest.raises(MesaInterpError, match="cover 3 examples"):
        find_circuit(chunked, chunks=[first])
    with pytest.raises(MesaInterpError, match="per_example"):
        find_circuit(chunked, chunks=[])
    acdc = prepare(SearchConfig(checkpoint=str(chunked.config.checkpoint), method="acdc",
                                threshold=0.1, n_examples=8))  # fmt: skip
    with pytest.raises(MesaInterpError, match="acdc"):
        find_circuit(acdc, chunks=[first])
    with pytest.raises(MesaInterpError, match="acdc"):
        chunk_scores(acdc, 0, 3)
