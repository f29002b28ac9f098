"""Re-run a committed circuit search and rewrite its files and card.

    python circuits/build_card.py tree-path

reads circuits/<name>/search.toml, runs the search exactly as `mesainterp search`
does, and writes circuits/<name>/circuit.json, faithfulness.csv and README.md (the
card). The card also measures how well attribution tracks exact patching on the
model's head outputs (`agreement.csv`) and, for path models, where the goal is
decodable and whether steering along the probe retargets the model (`goal_probes.md`);
circuits/<name>/notes.md, if present, is included as written.
tests/integration/test_circuits.py re-runs the same search and requires the same circuit.

    python circuits/build_card.py tree-path --skip-probes   # reuse goal_probes.md
    python circuits/build_card.py tree-path --card-only     # only rewrite README.md
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

import pandas as pd

from mesainterp.attribution.agreement import attribution_agreement
from mesainterp.discovery.circuit import Circuit
from mesainterp.discovery.config import load_config
from mesainterp.discovery.faithfulness_measure import FaithfulnessRow, rows_to_frame
from mesainterp.discovery.search import SearchOutcome, SearchPlan, _metric, prepare, run_search

__all__: list[str] = []

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # goal_probes.py sits beside this script

from goal_probes import GOAL_LABELS, goal_probe_lines, goal_probes  # noqa: E402


def agreement_frame(plan: SearchPlan) -> pd.DataFrame:
    """Attribution vs exact patching on the model's head outputs, several estimates."""
    kw = {"clean": plan.pair.clean.inputs, "corrupted": plan.pair.corrupted.inputs,
          "metric": _metric(plan), "batch": plan.pair.clean}  # fmt: skip
    runs = [
        attribution_agreement(plan.model, granularity="head", **kw),
        attribution_agreement(plan.model, granularity="head", ig_steps=1, **kw),
        attribution_agreement(plan.model, granularity="head", ig_steps=5, **kw),
        attribution_agreement(plan.model, granularity="head_pos", **kw),
    ]
    return pd.DataFrame([a.to_dict() for a in runs])


def agreement_lines(frame: pd.DataFrame, n: int) -> list[str]:
    lines = [
        "## Attribution vs exact patching (head outputs)",
        "",
        f"On the same {n} pairs, each head's output (all positions, or one position) is "
        "patched from the clean run into the corrupted run exactly, one site at a time, and "
        "compared with its attribution estimate: the gradient (2 forwards + 1 backward), or "
        "EAP-IG's edge scores summed over the head's outgoing edges (IG with n midpoint "
        "steps). Top-k: overlap of the k sites with the largest |effect| (the issue's bar "
        "is 0.9).",
        "",
        "| sites | estimate | n | Pearson | Spearman | top-k overlap |",
        "|---|---|---|---|---|---|",
    ]
    for r in frame.itertuples():
        sites = "head" if r.granularity == "head" else "head x position"
        lines.append(f"| {sites} | {r.estimate} | {r.n_sites} | {r.pearson:.3f} | "
                     f"{r.spearman:.3f} | {r.top_k_overlap:.2f} (k={r.k}) |")  # fmt: skip
    return [*lines, ""]


def _ci(row: FaithfulnessRow) -> str:
    return f"{row.value:.3f} [{row.ci_low:.3f}, {row.ci_high:.3f}]"


def card(
    name: str, outcome: SearchOutcome, command: list[str], extra: list[str] | None = None
) -> str:
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
        *(extra or []),
        "## Reproduce",
        "",
        "```",
        shlex.join(command),
        f"python circuits/build_card.py {name}   # rewrites this folder (with the sections above)",
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


def _command(name: str) -> list[str]:
    return ["mesainterp", "search", f"circuits/{name}/search.toml", "--out", f"runs/{name}"]


def _extra(folder: Path, agreement: pd.DataFrame, n_examples: int) -> list[str]:
    extra = agreement_lines(agreement, n_examples)
    for part in ("notes.md", "goal_probes.md"):
        if (folder / part).is_file():
            extra += [(folder / part).read_text().rstrip(), ""]
    return extra


def render(name: str) -> Path:
    """Rewrite only the card, from the folder's committed files (no search is run)."""
    folder = HERE / name
    circuit = Circuit.load(folder / "circuit.json")
    frame = pd.read_csv(folder / "faithfulness.csv")
    rows = [
        FaithfulnessRow(
            measure=r.measure,
            ablation=r.ablation,
            k=None if pd.isna(r.k) else int(r.k),
            n_edges=int(r.n_edges),
            value=float(r.value),
            ci_low=float(r.ci_low),
            ci_high=float(r.ci_high),
        )
        for r in frame.itertuples()
    ]
    outcome = SearchOutcome(circuit=circuit, rows=rows, ranking=[])
    agreement = pd.read_csv(folder / "agreement.csv")
    extra = _extra(folder, agreement, int(circuit.params["n_examples"]))
    (folder / "README.md").write_text(card(name, outcome, _command(name), extra))
    return folder


def build(name: str, *, probes: bool = True) -> Path:
    folder = HERE / name
    config_path = folder / "search.toml"
    command = _command(name)
    plan = prepare(load_config(config_path))
    outcome = run_search(plan, command=command)
    # Keep the committed file stable across machines: no timestamps or local paths.
    outcome.circuit.provenance.pop("created_utc", None)
    outcome.circuit.save(folder / "circuit.json")
    rows_to_frame(outcome.rows).to_csv(folder / "faithfulness.csv", index=False)
    agreement = agreement_frame(plan)
    agreement.to_csv(folder / "agreement.csv", index=False)
    if plan.model_name in GOAL_LABELS and probes:
        lines = goal_probe_lines(name, goal_probes(plan.model_name))
        (folder / "goal_probes.md").write_text("\n".join(lines))
    extra = _extra(folder, agreement, plan.config.n_examples)
    (folder / "README.md").write_text(card(name, outcome, command, extra))
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description="re-run a circuit search and rewrite its card")
    parser.add_argument("names", nargs="+", help="folders under circuits/")
    parser.add_argument("--skip-probes", action="store_true",
                        help="reuse the folder's goal_probes.md (if any) instead of re-measuring")  # fmt: skip
    parser.add_argument("--card-only", action="store_true",
                        help="rewrite README.md from the committed files, run nothing")  # fmt: skip
    args = parser.parse_args()
    for name in args.names:
        print(render(name) if args.card_only else build(name, probes=not args.skip_probes))


if __name__ == "__main__":
    main()
