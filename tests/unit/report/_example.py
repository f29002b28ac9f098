"""An example run directory built from synthetic results (no model needed).

`write_example_run(path)` writes every result kind the report understands, with
made-up numbers, and hostile token strings in the attention view; it exists to
try `mesainterp report` and to test reports end to end. Nothing here is a
measurement.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from mesainterp.report.rundir import write_run
from mesainterp.viz import save_static, tree_figure

__all__ = ["HOSTILE_TOKENS", "example_patching_table", "example_probe_table", "write_example_run"]

HOSTILE_TOKENS = [
    "<s>",
    "</script><script>window.__pwned = 1</script>",
    '<img src="https://example.invalid/x.png" onerror="window.__pwned = 2">',
    "a&b",
    "\u2028",
    "goal",
]


def example_patching_table(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows: list[tuple[object, ...]] = []
    for layer in range(3):
        for position in range(6):
            value = float(rng.normal(0, 0.3) + (1.0 if position == 5 - layer else 0.0))
            rows.append(("resid_pre", layer, None, position, value, value - 0.1, value + 0.1, 64))
        for head in range(4):
            for position in (4, 5):
                value = float(rng.normal(0, 0.2) + (0.8 if head == layer else 0.0))
                rows.append(
                    ("attn_head", layer, head, position, value, value - 0.15, value + 0.15, 64)
                )
    return pd.DataFrame(
        rows, columns=["kind", "layer", "head", "position", "value", "ci_low", "ci_high", "n"]
    )


def example_probe_table(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for pos in (4, 5):
        for layer in range(4):
            value = min(0.99, 0.3 + 0.2 * layer + 0.05 * pos - 0.2)
            rows.append((layer, pos, "goal", value, 0.02, 0.3 + 0.02 * rng.random(), 0.25, 0.2))
    return pd.DataFrame(
        rows,
        columns=["layer", "pos", "target", "value", "se", "random_init", "shuffled", "majority"],
    )


def write_example_run(root: str | Path) -> Path:
    """Write the example run into `root` (created); returns its path."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    exact = example_patching_table(0)
    exact.to_parquet(root / "patching.parquet")
    attribution = exact.copy()
    attribution["value"] = exact["value"] * 0.9 + np.random.default_rng(1).normal(
        0, 0.05, len(exact)
    )
    attribution.to_csv(root / "attribution.csv", index=False)
    example_probe_table().to_csv(root / "probes.csv", index=False)
    circuit = {
        "nodes": ["embed", "L0H1", "L1H2", {"name": "MLP1", "layer": 1}, "L2H0", "logits"],
        "edges": [
            {"source": "embed", "target": "L0H1", "score": 0.9},
            {"source": "L0H1", "target": "L1H2", "score": 0.6},
            {"source": "L0H1", "target": "MLP1", "score": -0.2},
            {"source": "L1H2", "target": "L2H0", "score": 0.7},
            {"source": "MLP1", "target": "L2H0", "score": 0.1},
            {"source": "L2H0", "target": "logits", "score": 1.0},
        ],
        "faithfulness": 0.93,
    }
    (root / "circuit.json").write_text(json.dumps(circuit))
    rng = np.random.default_rng(2)
    n = len(HOSTILE_TOKENS)
    scores = rng.normal(size=(2, n, n))
    scores = np.where(np.tril(np.ones((n, n))) > 0, scores, -np.inf)
    pattern = np.exp(scores - scores.max(-1, keepdims=True))
    pattern = pattern / pattern.sum(-1, keepdims=True)
    attention = {
        "tokens": HOSTILE_TOKENS,
        "attention": pattern.tolist(),
        "head_names": ["L0H0", "L0H1"],
    }
    (root / "attention.json").write_text(json.dumps(attention))
    edges = [(5, 3), (5, 7), (3, 1), (3, 9), (7, 2), (1, 4)]
    overlay = tree_figure(
        edges, root=5, goal=4, path=[5, 3, 1, 4], model_path=[5, 3, 9], intensity={4: 0.9, 1: 0.4}
    )
    save_static(overlay, root / "overlays" / "tree", formats=("svg",))
    pd.DataFrame({"metric": ["exact_path", "token_acc"], "value": [0.97, 0.99]}).to_csv(
        root / "summary.csv", index=False
    )
    write_run(
        root,
        title="Example run <synthetic numbers>",
        command=["mesainterp", "patch", "--model", "example"],
        provenance={"mesainterp_version": "0.1.0", "seed": 0, "model_fingerprint": "ab" * 32},
        results=[
            {"name": "patching", "kind": "patching", "path": "patching.parquet"},
            {"name": "probes", "kind": "probes", "path": "probes.csv", "target": "goal"},
            {
                "name": "attribution",
                "kind": "attribution",
                "path": "attribution.csv",
                "exact": "patching.parquet",
            },
            {"name": "circuit", "kind": "circuit", "path": "circuit.json"},
            {"name": "attention", "kind": "attention", "path": "attention.json"},
            {
                "name": "tree-overlay",
                "kind": "figure",
                "path": "overlays/tree.svg",
                "title": "Tree overlay",
            },
            {"name": "summary", "kind": "table", "path": "summary.csv"},
        ],
    )
    return root
