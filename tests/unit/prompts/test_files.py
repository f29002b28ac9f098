"""CSV and JSONL prompt files: round trips, hand-written files, and errors naming file, line
and column."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from mesainterp.errors import ConfigError
from mesainterp.prompts import PromptError, PromptPairs, load_prompts, save_prompts
from tests.unit.prompts._ioi import ROLES, ioi_columns, ioi_tokenizer


def text_pairs(n: int = 4) -> PromptPairs:
    columns = ioi_columns(n)
    template = columns.pop("template")
    columns["clean_answer"][1] = " Mary and John"  # one multi-token answer
    return PromptPairs.from_strings(
        **columns,
        tokenizer=ioi_tokenizer(),
        labels={"template": template, "weight": [0.5, 1.0, 2.0, 1.5][:n], "k": list(range(n))},
        roles={name: [pos] * n for name, pos in ROLES.items()},
    )


def same(a: PromptPairs, b: PromptPairs) -> None:
    assert a.rows == b.rows  # token ids (not where the rows came from)
    assert dict(a.labels) == dict(b.labels) and dict(a.roles) == dict(b.roles)
    assert a.texts == b.texts and a.position_labels == b.position_labels
    pa, pb = a.to_pair(), b.to_pair()
    assert torch.equal(pa.clean.inputs, pb.clean.inputs)
    assert torch.equal(pa.clean.targets, pb.clean.targets)


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_text_pairs_round_trip(tmp_path: Path, suffix: str) -> None:
    pairs = text_pairs()
    path = save_prompts(pairs, tmp_path / f"ioi{suffix}")
    back = load_prompts(path, tokenizer=ioi_tokenizer(), roles=list(pairs.roles))
    same(back, pairs)
    assert back.labels["weight"] == (0.5, 1.0, 2.0, 1.5) and back.labels["k"] == (0, 1, 2, 3)
    assert back.rows[2].where == f"ioi{suffix} line {4 if suffix == '.csv' else 3} (row 2)"


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_token_id_pairs_round_trip(tmp_path: Path, suffix: str) -> None:
    pairs = PromptPairs.from_token_ids(
        [[1, 2, 3], [1, 4, 3]], [[1, 4, 3], [1, 2, 3]], [[5, 6], 7], [7, 5],
        labels={"group": ["a", "b"]}, roles={"X": [1, 1]},
    )  # fmt: skip
    path = save_prompts(pairs, tmp_path / f"ids{suffix}")
    same(load_prompts(path, roles=["X"], vocab_size=8), pairs)


def test_a_hand_written_csv_reads_like_from_strings(tmp_path: Path) -> None:
    columns = ioi_columns(3)
    path = tmp_path / "mine.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["clean", "corrupted", "clean_answer", "corrupted_answer", "S2", "note"])
        for i in range(3):
            writer.writerow([columns[k][i] for k in ("clean", "corrupted", "clean_answer", "corrupted_answer")] + [-5, f"n{i}"])  # fmt: skip
    loaded = load_prompts(path, tokenizer=ioi_tokenizer(), roles=["S2"])
    direct = PromptPairs.from_strings(
        *(columns[k] for k in ("clean", "corrupted", "clean_answer", "corrupted_answer")),
        tokenizer=ioi_tokenizer(),
        labels={"note": ["n0", "n1", "n2"]},
        roles={"S2": [9, 9, 9]},
    )
    same(loaded, direct)
    assert loaded.labels_for([9]) == ["S2"]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


GOOD = {"clean": [1, 2], "corrupted": [1, 3], "clean_answer": 4, "corrupted_answer": 5, "R": 0}


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (
            [GOOD, GOOD | {"clean": [1, 2, 3]}],
            r"^bad.jsonl line 2 \(row 1\), column 'corrupted': 2 tokens but the clean prompt has 3",
        ),
        (
            [GOOD, GOOD | {"clean": [1, 2, 3], "corrupted": [1, 3, 3]}],
            r"^bad.jsonl line 2 \(row 1\), column 'clean': 3 tokens .* but bad.jsonl line 1 \(row 0\) has 2",
        ),
        (
            [GOOD, GOOD | {"clean_answer": "x"}],
            r"^bad.jsonl line 2 \(row 1\), column 'clean_answer': expected space-separated token ids, got 'x'",
        ),
        (
            [GOOD, GOOD | {"R": "end"}],
            r"^bad.jsonl line 2 \(row 1\), column 'R': expected a token position",
        ),
        (
            [GOOD, {k: v for k, v in GOOD.items() if k != "R"}],
            r"^bad.jsonl line 2 \(row 1\), column 'R': missing",
        ),
        (
            [{k: v for k, v in GOOD.items() if k != "clean_answer"}],
            r"^bad.jsonl line 1 \(row 0\), column 'clean_answer': missing column",
        ),
        (
            [GOOD | {"corrupted_answer": 99}],
            r"^bad.jsonl line 1 \(row 0\), column 'corrupted_answer': token id 99 out of range \(ids 0..9\)",
        ),
    ],
)
def test_bad_jsonl_rows_are_named_by_file_line_and_column(tmp_path: Path, rows, message) -> None:
    load_prompts(write_jsonl(tmp_path / "good.jsonl", [GOOD, GOOD]), roles=["R"], vocab_size=10)
    with pytest.raises(PromptError, match=message):
        load_prompts(write_jsonl(tmp_path / "bad.jsonl", rows), roles=["R"], vocab_size=10)


def test_bad_csv_and_bad_paths_are_named(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("clean,corrupted,clean_answer,corrupted_answer\n1 2,1 3,4,5\n1 2,1 3,4\n")
    with pytest.raises(PromptError, match=r"^bad.csv line 3 \(row 1\): the number of cells"):
        load_prompts(path)
    path.write_text("clean,corrupted,answer,corrupted_answer\n1 2,1 3,4,5\n")
    with pytest.raises(
        PromptError, match=r"^bad.csv line 1, column 'clean_answer': missing column"
    ):
        load_prompts(path)
    path.write_text('clean,corrupted,clean_answer,corrupted_answer\n"When Mary",When John,,x\n')
    with pytest.raises(
        PromptError, match=r"^bad.csv line 2 \(row 0\), column 'clean_answer': empty"
    ):
        load_prompts(path, tokenizer=ioi_tokenizer())
    with pytest.raises(PromptError, match=r"^bad.csv, column 'S2': role column missing"):
        load_prompts(path, tokenizer=ioi_tokenizer(), roles=["S2"])
    with pytest.raises(
        ConfigError, match=r"^path: prompts.txt: unknown file type \(allowed: '.csv', '.jsonl'\)"
    ):
        load_prompts(tmp_path / "prompts.txt")
    with pytest.raises(ConfigError, match=r"^path: .*missing.csv: no such file"):
        load_prompts(tmp_path / "missing.csv")
    (tmp_path / "bad.jsonl").write_text('{"clean": [1]}\n[1, 2]\n')
    with pytest.raises(PromptError, match=r"^bad.jsonl line 1 \(row 0\), column 'corrupted'"):
        load_prompts(tmp_path / "bad.jsonl")
    with pytest.raises(PromptError, match=r"got 'When Mary' \(text needs tokenizer=...\)"):
        load_prompts(path)
    (tmp_path / "bad.jsonl").write_text("{not json\n")
    with pytest.raises(PromptError, match=r"^bad.jsonl line 1 \(row 0\): not JSON"):
        load_prompts(tmp_path / "bad.jsonl")
