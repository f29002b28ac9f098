"""Atomic writes: the target holds the old or the new content, never a partial one."""

from __future__ import annotations

import os

import pytest

from mesainterp.atomic import (
    TMP_PREFIX,
    atomic_write,
    atomic_write_json,
    atomic_write_text,
    remove_stale_temps,
)


def test_write_replaces_and_leaves_no_temp(tmp_path):
    target = tmp_path / "sub" / "a.txt"
    atomic_write_text(target, "one")
    atomic_write_text(target, "two")
    assert target.read_text() == "two"
    assert os.listdir(target.parent) == ["a.txt"]


def test_failed_writer_keeps_old_content_and_removes_temp(tmp_path):
    target = tmp_path / "a.json"
    atomic_write_json(target, {"x": 1})

    def broken(temp):
        temp.write_text('{"x": 2, "trunc')
        raise KeyboardInterrupt  # as a SIGINT arriving mid-write

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, broken)
    assert target.read_text() == '{\n  "x": 1\n}\n'
    assert os.listdir(tmp_path) == ["a.json"]


def test_temp_keeps_the_suffix_for_format_sniffing_writers(tmp_path):
    seen = []
    atomic_write(tmp_path / "fig.png", lambda temp: (seen.append(temp), temp.write_bytes(b"x")))
    assert seen[0].suffix == ".png" and seen[0].name.startswith(TMP_PREFIX)
    assert seen[0].parent == tmp_path  # same directory: the rename never crosses devices


def test_remove_stale_temps(tmp_path):
    (tmp_path / "d").mkdir()
    stale = tmp_path / "d" / f"{TMP_PREFIX}abcd-x.safetensors"
    stale.write_bytes(b"partial")
    (tmp_path / "keep.txt").write_text("k")
    assert remove_stale_temps(tmp_path) == [stale]
    assert not stale.exists() and (tmp_path / "keep.txt").exists()
