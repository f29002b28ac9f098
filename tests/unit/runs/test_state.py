"""Run directories: refusal without --resume, identity checks, unit storage and plans."""

from __future__ import annotations

import pytest
import torch

from mesainterp.errors import ConfigError
from mesainterp.runs.plan import chunk_plan
from mesainterp.runs.state import RunDirNotEmpty, RunMismatch, identity_diff, open_run

IDENTITY = {"command": "patch", "model_fingerprint": "abc", "job": {"n": 8, "seed": 0}}


def test_fresh_run_then_refuse_without_resume(tmp_path):
    out = tmp_path / "run"
    open_run(out, identity=IDENTITY, resume=False)
    with pytest.raises(RunDirNotEmpty, match="--resume"):
        open_run(out, identity=IDENTITY, resume=False)
    assert open_run(out, identity=IDENTITY, resume=True).identity == IDENTITY


def test_resume_into_empty_or_missing_dir_starts_fresh(tmp_path):
    assert open_run(tmp_path / "new", identity=IDENTITY, resume=True).done_keys() == set()


def test_resume_refuses_a_foreign_directory(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(RunDirNotEmpty, match="no resumable run"):
        open_run(tmp_path, identity=IDENTITY, resume=True)


def test_resume_names_what_differs(tmp_path):
    open_run(tmp_path, identity=IDENTITY, resume=False)
    changed = {**IDENTITY, "model_fingerprint": "zzz", "job": {"n": 9, "seed": 0}}
    with pytest.raises(RunMismatch, match=r"job\.n, model_fingerprint"):
        open_run(tmp_path, identity=changed, resume=True)


def test_identity_diff_paths():
    assert identity_diff({"a": {"b": 1, "c": 2}}, {"a": {"b": 1, "c": 3, "d": 0}}) == [
        "a.c",
        "a.d",
    ]
    assert identity_diff([1, 2], [1, 2]) == []


def test_units_round_trip(tmp_path):
    state = open_run(tmp_path, identity=IDENTITY, resume=False)
    state.save_unit("sites-0", {"x": torch.arange(3.0)}, {"method": "fast"})
    assert state.done_keys() == {"sites-0"}
    tensors, meta = state.load_unit("sites-0")
    assert torch.equal(tensors["x"], torch.arange(3.0)) and meta == {"method": "fast"}


def test_chunk_plan_keys_are_stable_and_content_addressed():
    items = list(range(10))
    a, b = chunk_plan("s", items, 4), chunk_plan("s", items, 4)
    assert a.keys == b.keys and len(a) == 3
    assert [u.payload for u in a.units][-1] == {"start": 8, "stop": 10}
    assert chunk_plan("s", items, 4, context={"seed": 1}).keys != a.keys
    assert chunk_plan("s", [*items[:9], 99], 4).keys[:2] == a.keys[:2]
    with pytest.raises(ConfigError, match="chunk_size"):
        chunk_plan("s", items, 0)
