"""What limits a circuit's faithfulness: selection rule, edge budget or ablation.

    python circuits/diagnose.py tree-path

On the folder's search pairs and metric, prints faithfulness (point values, resample /
mean / zero) of: the EAP-IG top-n circuit and a circuit grown greedily from the logits
by the same scores (n = 20, 40, 80), and ACDC circuits under resample and mean
ablation (thresholds 0.05 and 0.2).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from mesainterp.attribution import EdgeForward, edge_attribution
from mesainterp.discovery import Circuit, acdc, drop_dangling, faithfulness, load_config
from mesainterp.discovery.search import _metric, prepare

__all__: list[str] = []

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name")
    plan = prepare(load_config(HERE / parser.parse_args().name / "search.toml"))
    ef = EdgeForward(plan.model)
    g = ef.graph
    clean, cor = plan.pair.clean.inputs, plan.pair.corrupted.inputs
    metric, batch = _metric(plan), plan.pair.clean
    kw = {"clean": clean, "corrupted": cor, "metric": metric, "batch": batch, "forward": ef}
    ranked = edge_attribution(plan.model, method="eap-ig", ig_steps=5, **kw).ranked()
    scores = dict(ranked)

    def greedy(n: int) -> dict[tuple[str, str], float]:
        # Grow from the logits: add the best |score| edge into a node already reached.
        reached, chosen = {"logits"}, {}
        while len(chosen) < n:
            best = max(
                (e for e in scores if e not in chosen
                 and (e[1] == "logits" or g.upstream_of_downstream(e[1]) in reached)),
                key=lambda e: abs(scores[e]),
            )  # fmt: skip
            chosen[best] = scores[best]
            reached.add(best[0])
        return chosen

    def faith(edges: dict[tuple[str, str], float]) -> dict[str, float]:
        c = Circuit.from_edges(edges, method="x", params={}, ablation="resample",
                               provenance={}, node_order=g.upstream)  # fmt: skip
        rows = faithfulness(plan.model, c, n_boot=10, progress=False, **kw)
        return {r.ablation: round(r.value, 3) for r in rows if r.measure == "faithfulness"}

    print("edges in the graph:", len(g.edges()))
    for n in (20, 40, 80):
        top, grown = drop_dangling(g, dict(ranked[:n])), greedy(n)
        print(f"eap-ig top {n}: {len(top)} edges {faith(top)}; "
              f"greedy from logits: {len(grown)} edges {faith(grown)}")  # fmt: skip
    for ablation in ("resample", "mean"):
        for threshold in (0.05, 0.2):
            r = acdc(plan.model, threshold=threshold, ablation=ablation, progress=False,
                     reference=torch.cat([clean, cor]), **kw)  # fmt: skip
            print(f"acdc {ablation} {threshold}: {len(r.kept)} edges {faith(r.kept)}")


if __name__ == "__main__":
    main()
