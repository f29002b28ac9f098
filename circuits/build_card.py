"""Re-run a committed circuit search and rewrite its files and card.

    python circuits/build_card.py tree-path

reads circuits/<name>/search.toml, runs the search exactly as `mesainterp search`
does, and writes circuits/<name>/circuit.json, faithfulness.csv and README.md (the
card). tests/integration/test_circuits.py re-runs the same search and requires the
same circuit.
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from mesainterp.discovery.config import load_config
from mesainterp.discovery.faithfulness import FaithfulnessRow, rows_to_frame
from mesainterp.discovery.search import SearchOutcome, prepare, run_search

__all__: list[str] = []

HERE = Path(__file__).resolve().parent


def _ci(row: FaithfulnessRow) -> str:
    return f"{row.value:.3f} [{row.ci_low:.3f}, {row.ci_high:.3f}]"


def card(name: str, outcome: SearchOutcome, command: list[str]) -> str:
    c = outcome.circuit
    prov = c.provenance
    cfg = prov["config"]
    rows = outcome.rows
    heads = [n for n in c.nodes if n not in ("embed", "pos_embed", "logits")]
    top = sorted(c.edges.items(), key=lambda kv: -abs(kv[1]))[:12]
    lines = [
        f"# Circuit card: `{name}`",
        "",
        f"Model `{prov['model_name']}` (fingerprint `{prov['model_fingerprint']}`), task "
        f"`{cfg['task']['name']}` with counterfactual family `{cfg['family']}`, "
        f"{c.params.get('n_examples')} clean/corrupted pairs (seed {prov['seed']}), "
        f"metric `{c.params.get('metric')}`.",
        "",
        "## What was found",
        "",
        f"Method `{c.method}` ({', '.join(f'{k}={v}' for k, v in sorted(c.params.items()))}); "
        f"edges outside the circuit ablated by `{c.ablation}`. The circuit has "
        f"**{len(c.edges)} edges** between **{len(c.nodes)} nodes**; the components in it are "
        f"{', '.join(f'`{h}`' for h in heads) or 'none'}.",
        *(
            [
                "",
                "The circuit was chosen under resample ablation, where an edge whose clean and "
                "corrupted values agree (positional embeddings, for one) scores exactly zero; "
                "mean and zero ablation also remove such edges' information, which is why they "
                "recover less.",
            ]
            if c.ablation == "resample"
            else []
        ),
        "",
        "Strongest edges (score = attribution estimate of the metric change when the edge is "
        "patched; for ACDC, the measured change when it is cut):",
        "",
        "| source | target input | score |",
        "|---|---|---|",
        *(f"| `{u}` | `{d}` | {s:+.4f} |" for (u, d), s in top),
        "",
        "## Faithfulness (95% bootstrap intervals over examples)",
        "",
        "Faithfulness: fraction of the clean-vs-corrupted metric gap recovered when every edge "
        "outside the circuit is ablated (1 = all). Completeness: 1 - the fraction left when "
        "the circuit's own edges are ablated in the full model (1 = removing the circuit "
        "removes the behaviour).",
        "",
        "| ablation | faithfulness | completeness |",
        "|---|---|---|",
    ]
    for ablation in dict.fromkeys(r.ablation for r in rows):
        f = next(r for r in rows if r.ablation == ablation and r.measure == "faithfulness")
        k = next(r for r in rows if r.ablation == ablation and r.measure == "completeness")
        lines.append(f"| {ablation} | {_ci(f)} | {_ci(k)} |")
    curve = [r for r in rows if r.measure == "curve"]
    if curve:
        lines += ["", "Recovered metric vs circuit size (top-k edges by |score|):", "",
                  "| ablation | k | edges | recovered |", "|---|---|---|---|"]  # fmt: skip
        lines += [f"| {r.ablation} | {r.k} | {r.n_edges} | {_ci(r)} |" for r in curve]
    lines += [
        "",
        "## Reproduce",
        "",
        "```",
        shlex.join(command),
        f"python circuits/build_card.py {name}   # rewrites this folder",
        "```",
        "",
        f"Made with mesainterp {prov['mesainterp_version']}, torch {prov['torch_version']}, "
        f"transformer-lens {prov['transformer_lens_version']}, commit `{prov['git_commit']}`. "
        "`tests/integration/test_circuits.py` re-runs the search and requires the same edges.",
        "",
        "## How to cite",
        "",
        "Cite mesainterp as given in `CITATION.cff`, and name this circuit by its file "
        f"(`circuits/{name}/circuit.json`, schema version "
        f"{c.to_dict()['schema_version']}), the model fingerprint above and the mesainterp "
        "version.",
        "",
    ]
    return "\n".join(lines)


def build(name: str) -> Path:
    folder = HERE / name
    config_path = folder / "search.toml"
    command = ["mesainterp", "search", f"circuits/{name}/search.toml", "--out", f"runs/{name}"]
    plan = prepare(load_config(config_path))
    outcome = run_search(plan, command=command)
    # Keep the committed file stable across machines: no timestamps or local paths.
    outcome.circuit.provenance.pop("created_utc", None)
    outcome.circuit.save(folder / "circuit.json")
    rows_to_frame(outcome.rows).to_csv(folder / "faithfulness.csv", index=False)
    (folder / "README.md").write_text(card(name, outcome, command))
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description="re-run a circuit search and rewrite its card")
    parser.add_argument("names", nargs="+", help="folders under circuits/")
    for name in parser.parse_args().names:
        print(build(name))


if __name__ == "__main__":
    main()
