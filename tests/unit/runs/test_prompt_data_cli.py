"""`mesainterp patch|probe|search MODEL --data FILE` on a HuggingFace directory.

The model is a tiny random GPT-2 saved with `save_pretrained` beside a locally
trained BPE tokenizer; the file is a CSV of IOI-style pairs. The library's
`patch_pair` on the same pairs is the oracle for the command's table.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import torch
import transformers

from mesainterp.cli.main import main
from mesainterp.model import load_hf_dir, model_shape
from mesainterp.patching import load_result
from mesainterp.patching.api import patch_pair
from mesainterp.prompts import load_prompts
from mesainterp.sites.named import named_sites
from tests.unit.patching.conftest import _one_thread
from tests.unit.prompts._ioi import ROLES, ioi_columns, ioi_tokenizer

__all__ = ["_one_thread"]

N_PAIRS = 8


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory) -> Path:
    """A random GPT-2 and its tokenizer in one save_pretrained directory."""
    root = tmp_path_factory.mktemp("hf-gpt2")
    tokenizer = ioi_tokenizer()
    config = transformers.GPT2Config(
        vocab_size=len(tokenizer), n_positions=32, n_embd=32, n_layer=2, n_head=2
    )
    torch.manual_seed(0)
    transformers.GPT2LMHeadModel(config).eval().save_pretrained(root, safe_serialization=True)
    tokenizer.save_pretrained(root)
    return root


def _write_csv(path: Path, columns: dict[str, list[Any]]) -> Path:
    names = list(columns)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(names)
        writer.writerows(zip(*(columns[n] for n in names), strict=True))
    return path


@pytest.fixture(scope="module")
def pairs_csv(tmp_path_factory) -> Path:
    """IOI pairs with role columns and a numeric label column (`abba`)."""
    columns = ioi_columns(N_PAIRS)
    columns["abba"] = [int(t == "ABBA") for t in columns["template"]]
    for role, pos in ROLES.items():
        columns[role] = [pos] * N_PAIRS
    return _write_csv(tmp_path_factory.mktemp("data") / "pairs.csv", columns)


ROLE_ARG = ",".join(ROLES)


def _cli(argv: list[str], capsys) -> tuple[int, Any]:
    capsys.readouterr()
    code = main(["--json", "--no-progress", *argv])
    return code, capsys.readouterr()


def _summary(out: str) -> dict[str, Any]:
    return json.loads(out.strip().splitlines()[-1])


def test_patch_on_a_data_file_equals_patch_pair(hf_dir, pairs_csv, tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["patch", str(hf_dir), "--data", str(pairs_csv), "--roles", ROLE_ARG,
            "--sites", "resid", "--out", str(out), "--n-boot", "50", "--chunk-size", "3"]  # fmt: skip
    code, cap = _cli(argv, capsys)
    assert code == 0, cap.err
    first = _summary(cap.out)
    assert first["n"] == N_PAIRS and first["family"] == "data"
    assert first["units_computed"] == first["units_total"] > 1
    table = load_result(out).table

    # The oracle: the library on the same pairs, with the pairs' own metric.
    pairs = load_prompts(
        pairs_csv, roles=list(ROLES),
        tokenizer=transformers.AutoTokenizer.from_pretrained(hf_dir, local_files_only=True),
    )  # fmt: skip
    model = load_hf_dir(hf_dir)
    pair = pairs.to_pair(family="data")
    sites = named_sites("resid", model_shape(model), seq_len=pair.clean.seq_len)
    expected = patch_pair(model, pair, sites, metric=pairs.default_metric(pair), n_boot=50).table
    columns = ["kind", "layer", "head", "position", "value", "ci_low", "ci_high"]
    pd.testing.assert_frame_equal(table[columns], expected[columns], check_exact=True)
    # Positions carry the file's roles and tokens.
    assert list(table["position_label"]) == pairs.labels_for(list(table["position"]))
    assert {"IO", "S2", "END"} <= set(table["position_label"])

    # Resume after losing units gives the identical table.
    units = sorted((out / "_run" / "units").glob("*.safetensors"))
    for path in units[:2]:
        path.unlink()
    code, cap = _cli([*argv, "--resume"], capsys)
    assert code == 0, cap.err
    resumed = _summary(cap.out)
    assert (resumed["units_computed"], resumed["units_reused"]) == (2, len(units) - 2)
    pd.testing.assert_frame_equal(load_result(out).table, table, check_exact=True)

    # One chunk (unchunked) gives the same table.
    whole = tmp_path / "whole"
    whole_argv = [str(whole) if a == str(out) else a for a in argv[:-1]]
    code, cap = _cli([*whole_argv, "1000"], capsys)
    assert code == 0, cap.err
    assert _summary(cap.out)["units_total"] == 1
    pd.testing.assert_frame_equal(load_result(whole).table, table, check_exact=True)

    # The report names the positions by the file's roles.
    code, cap = _cli(["report", str(out), "--static", "--formats", "png"], capsys)
    assert code == 0, cap.err
    page = (out / "report.html").read_text()
    # A tick of the heatmap: a token only the position labels carry (numbers otherwise).
    assert "drink</text>" in page and "S2</text>" in page


def test_an_edited_file_is_not_resumed(hf_dir, pairs_csv, tmp_path, capsys):
    out = tmp_path / "run"
    data = tmp_path / "pairs.csv"
    data.write_text(pairs_csv.read_text())
    argv = ["patch", str(hf_dir), "--data", str(data), "--sites", "resid", "--out", str(out),
            "--n-boot", "20", "--n", "4"]  # fmt: skip
    assert _cli(argv, capsys)[0] == 0
    rows = data.read_text().splitlines()
    data.write_text("\n".join([rows[0], rows[2], rows[1], *rows[3:]]) + "\n")
    code, cap = _cli([*argv, "--resume"], capsys)
    assert code == 2 and "data_sha256" in cap.err


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda cols: cols.pop("corrupted_answer"), "corrupted_answer"),
        (lambda cols: cols["clean"].__setitem__(2, "When Mary went"), "row 2"),
    ],
)
def test_a_bad_file_is_named_before_the_model_loads(tmp_path, capsys, edit, expected):
    columns = ioi_columns(4)
    edit(columns)
    data = _write_csv(tmp_path / "bad.csv", columns)
    tokenizer_dir = tmp_path / "tok"
    ioi_tokenizer().save_pretrained(tokenizer_dir)
    # The model does not exist: the file's refusal must come first.
    argv = ["patch", str(tmp_path / "no-model"), "--data", str(data), "--tokenizer",
            str(tokenizer_dir), "--sites", "resid", "--out", str(tmp_path / "o")]  # fmt: skip
    code, cap = _cli(argv, capsys)
    assert code == 2 and "bad.csv" in cap.err and expected in cap.err, cap.err
    assert not (tmp_path / "o").exists()


def test_missing_file_and_stray_options_are_refused(hf_dir, tmp_path, capsys):
    base = ["patch", str(hf_dir), "--sites", "resid", "--out", str(tmp_path / "o")]
    code, cap = _cli([*base, "--data", str(tmp_path / "nope.csv")], capsys)
    assert code == 2 and "nope.csv" in cap.err
    code, cap = _cli([*base, "--roles", "S2"], capsys)
    assert code == 2 and "--roles" in cap.err and "--data" in cap.err


def test_probe_on_a_label_column_equals_run_probes(hf_dir, pairs_csv, tmp_path, capsys):
    from mesainterp.probes.controls import ProbeSpec, run_probes
    from mesainterp.probes.dataset import collect_activations, probe_sites
    from mesainterp.zoo import load_model, loaded_control_twin

    out = tmp_path / "probe"
    argv = ["probe", str(hf_dir), "--data", str(pairs_csv), "--roles", ROLE_ARG,
            "--target", "abba", "--folds", "2", "--positions", "0,9,13", "--no-causal",
            "--out", str(out), "--chunk-size", "2"]  # fmt: skip
    code, cap = _cli(argv, capsys)
    assert code == 0, cap.err
    summary = _summary(cap.out)
    assert summary["units_computed"] == summary["units_total"] > 1
    table = pd.read_parquet(out / "probes.parquet")
    assert set(table["n"]) == {N_PAIRS}
    assert {"When", "S2", "END"} <= set(table["position_label"])

    # The oracle: the probes on the file's clean prompts, collected in one pass.
    loaded = load_model(hf_dir)
    pairs = load_prompts(
        pairs_csv, roles=list(ROLES),
        tokenizer=transformers.AutoTokenizer.from_pretrained(hf_dir, local_files_only=True),
    )  # fmt: skip
    clean = pairs.to_pair().clean
    sites = probe_sites(model_shape(loaded.model), [0, 9, 13], kind="resid_post")
    data = collect_activations(loaded.model, [clean], sites, progress=False)
    twin = collect_activations(loaded_control_twin(loaded), [clean], sites, progress=False)
    spec = ProbeSpec(target="abba", folds=2, seed=0)
    expected = run_probes(data, spec, random_init=twin, progress=False).table
    for column in ("layer", "pos", "value", "random_init", "shuffled", "majority"):
        assert table[column].tolist() == pytest.approx(expected[column].tolist(), abs=1e-12)

    # Resume after losing a unit, and one chunk, give the same values.
    units = sorted((out / "_run" / "units").glob("probes-*.safetensors"))
    units[0].unlink()
    code, cap = _cli([*argv, "--resume"], capsys)
    assert code == 0, cap.err
    assert _summary(cap.out)["units_computed"] == 1
    pd.testing.assert_frame_equal(pd.read_parquet(out / "probes.parquet"), table)
    whole = tmp_path / "whole"
    code, cap = _cli([str(whole) if a == str(out) else a for a in argv[:-1]] + ["99"], capsys)
    assert code == 0, cap.err
    columns = ["layer", "pos", "value", "random_init", "shuffled", "majority"]
    pd.testing.assert_frame_equal(
        pd.read_parquet(whole / "probes.parquet")[columns], table[columns]
    )

    code, cap = _cli(["report", str(out), "--static", "--formats", "png"], capsys)
    assert code == 0, cap.err
    assert "S2</text>" in (out / "report.html").read_text()


def test_probe_refuses_an_unknown_or_text_column(hf_dir, pairs_csv, tmp_path, capsys):
    for target in ("nope", "template"):
        argv = ["probe", str(tmp_path / "no-model"), "--data", str(pairs_csv), "--tokenizer",
                str(hf_dir), "--target", target, "--out", str(tmp_path / "o")]  # fmt: skip
        code, cap = _cli(argv, capsys)
        assert code == 2 and f"no numeric label column {target!r}" in cap.err, cap.err
        assert "'abba'" in cap.err or "abba" in cap.err


def _search_config(path: Path, model: Path, data: str | None, chunk: int | None) -> Path:
    lines = ["[model]", f'checkpoint = "{model}"', "[search]", 'method = "eap"', "top_n = 5"]
    if chunk is not None:
        lines.append(f"score_chunk = {chunk}")
    lines += ["[faithfulness]", 'ablations = ["resample", "mean"]', "curve_k = [1, 2]",
              "n_boot = 50"]  # fmt: skip
    if data is not None:
        lines += ["[data]", f'path = "{data}"', f"roles = {json.dumps(list(ROLES))}"]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_search_on_a_data_file(hf_dir, pairs_csv, tmp_path, capsys):
    from mesainterp.discovery.config import load_config
    from mesainterp.discovery.search import prepare, run_search

    (tmp_path / "pairs.csv").write_text(pairs_csv.read_text())
    # A path relative to the config's folder, in chunks of 3 examples.
    config = _search_config(tmp_path / "search.toml", hf_dir, "pairs.csv", chunk=3)
    out = tmp_path / "search"
    argv = ["search", str(config), "--out", str(out), "--no-report"]
    code, cap = _cli(argv, capsys)
    assert code == 0, cap.err
    first = _summary(cap.out)
    assert first["units_computed"] == first["units_total"] == 3 + 2  # score chunks, ablations
    circuit = json.loads((out / "circuit.json").read_text())

    # The plan's pair and metric are the file's, all 8 rows (64 capped at the file's size).
    plan = prepare(load_config(config))
    pairs = load_prompts(
        pairs_csv, roles=list(ROLES),
        tokenizer=transformers.AutoTokenizer.from_pretrained(hf_dir, local_files_only=True),
    )  # fmt: skip
    expected_pair = pairs.to_pair()
    assert plan.config.n_examples == N_PAIRS
    assert torch.equal(plan.pair.clean.inputs, expected_pair.clean.inputs)
    assert torch.equal(plan.pair.corrupted.inputs, expected_pair.corrupted.inputs)
    with torch.no_grad():
        logits = plan.model(plan.pair.clean.inputs)
    assert torch.equal(
        plan.task.default_metric(plan.pair)(logits, plan.pair.clean),
        pairs.default_metric(expected_pair)(logits, expected_pair.clean),
    )
    # The one-process library search gives the same circuit.
    whole = run_search(plan)
    assert json.loads(whole.circuit.to_json())["edges"] == circuit["edges"]

    # Resume after losing a score chunk: identical circuit file.
    units = sorted((out / "_run" / "units").glob("scores-*.safetensors"))
    units[0].unlink()
    code, cap = _cli([*argv, "--resume"], capsys)
    assert code == 0, cap.err
    assert _summary(cap.out)["units_computed"] == 1
    assert json.loads((out / "circuit.json").read_text()) == circuit

    # Unchunked, with the file given on the command line instead of [data].
    bare = _search_config(tmp_path / "bare.toml", hf_dir, None, chunk=None)
    whole_out = tmp_path / "whole"
    code, cap = _cli(["search", str(bare), "--out", str(whole_out), "--no-report",
                      "--data", str(pairs_csv), "--roles", ROLE_ARG], capsys)  # fmt: skip
    assert code == 0, cap.err
    other = json.loads((whole_out / "circuit.json").read_text())
    assert other["edges"] == circuit["edges"]
    assert other["faithfulness"] == circuit["faithfulness"]


def test_search_refuses_a_missing_data_file(hf_dir, tmp_path, capsys):
    config = _search_config(tmp_path / "s.toml", hf_dir, "missing.csv", chunk=None)
    code, cap = _cli(["search", str(config), "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and "data.path" in cap.err and "missing.csv" in cap.err, cap.err


def test_token_ids_need_no_tokenizer(hf_dir, pairs_csv, tmp_path, capsys):
    """A model folder without tokenizer files and a JSONL of token ids: the same table
    as the text file tokenized by the model's tokenizer."""
    from mesainterp.prompts import PromptPairs, save_prompts

    bare = tmp_path / "bare-model"
    bare.mkdir()
    for name in ("config.json", "model.safetensors"):
        (bare / name).write_bytes((hf_dir / name).read_bytes())
    pairs = load_prompts(
        pairs_csv, roles=list(ROLES),
        tokenizer=transformers.AutoTokenizer.from_pretrained(hf_dir, local_files_only=True),
    )  # fmt: skip
    rows = pairs.rows
    ids = PromptPairs.from_token_ids(
        [r.clean for r in rows], [r.corrupted for r in rows],
        [r.clean_answer for r in rows], [r.corrupted_answer for r in rows],
        roles=dict(pairs.roles),
    )  # fmt: skip
    data = save_prompts(ids, tmp_path / "ids.jsonl")
    tables = []
    for model, file in ((bare, data), (hf_dir, pairs_csv)):
        out = tmp_path / f"out-{len(tables)}"
        argv = ["patch", str(model), "--data", str(file), "--roles", ROLE_ARG,
                "--sites", "mlp", "--out", str(out), "--n-boot", "20"]  # fmt: skip
        code, cap = _cli(argv, capsys)
        assert code == 0, cap.err
        tables.append(load_result(out).table)
    columns = ["kind", "layer", "position", "value", "ci_low", "ci_high"]
    pd.testing.assert_frame_equal(tables[0][columns], tables[1][columns], check_exact=True)
    # Text without a tokenizer is refused naming the file and row.
    argv = ["patch", str(bare), "--data", str(pairs_csv), "--sites", "mlp",
            "--out", str(tmp_path / "o")]  # fmt: skip
    code, cap = _cli(argv, capsys)
    assert code == 2 and "pairs.csv" in cap.err and "row 0" in cap.err, cap.err


def test_search_scores_multi_token_answers_by_their_teacher_forced_metric(hf_dir, tmp_path, capsys):
    from mesainterp.attribution.eap import edge_attribution
    from mesainterp.discovery.config import load_config
    from mesainterp.discovery.greedy import top_edges
    from mesainterp.discovery.search import find_circuit, prepare
    from mesainterp.prompts.metrics import answer_logprob_diff

    columns = ioi_columns(6)
    columns["clean_answer"] = [" Mary and", " John", " Alice went", " Bob", " Tom", " Anna"]
    columns["corrupted_answer"] = [" John", " Alice and", " Bob", " Tom went", " Anna", " Mary"]
    for role, pos in ROLES.items():
        columns[role] = [pos] * 6
    data = _write_csv(tmp_path / "multi.csv", columns)
    # Chunks of 4 examples: 8 teacher-forced rows, then the last 4.
    config = _search_config(tmp_path / "multi.toml", hf_dir, str(data), chunk=4)
    plan = prepare(load_config(config))
    pairs = load_prompts(
        data, roles=list(ROLES),
        tokenizer=transformers.AutoTokenizer.from_pretrained(hf_dir, local_files_only=True),
    )  # fmt: skip
    assert pairs.is_multi_token and plan.config.n_examples == 6
    pair = pairs.to_pair()
    assert torch.equal(plan.pair.clean.inputs, pair.clean.inputs)  # 12 rows, 2 per example

    # The oracle: EAP on the whole teacher-forced pair with the answers' log-probability
    # difference, in one call, and its top 5 edges.
    scores = edge_attribution(
        plan.model, clean=pair.clean.inputs, corrupted=pair.corrupted.inputs,
        metric=answer_logprob_diff(pair), batch=pair.clean, method="eap",
    )  # fmt: skip
    expected = top_edges(scores, top_n=5)
    circuit, _ = find_circuit(plan)
    assert circuit.edges.keys() == expected.keys()
    assert list(circuit.edges.values()) == pytest.approx(list(expected.values()), rel=1e-5)

    # The command: the same circuit, faithfulness measured under the same metric.
    out = tmp_path / "search"
    code, cap = _cli(["search", str(config), "--out", str(out), "--no-report"], capsys)
    assert code == 0, cap.err
    saved = json.loads((out / "circuit.json").read_text())
    assert saved["edges"] == json.loads(circuit.to_json())["edges"]
    assert isinstance(saved["faithfulness"], float)
