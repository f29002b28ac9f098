"""Every numeric command-line option is declared through `mesainterp.schema` and refuses
any out-of-range or non-numeric value: exit 2, the option named, nothing written."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mesainterp.cli.main import build_parser, main
from mesainterp.schema import Range


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def _numeric_options() -> list[tuple[str, str, Range]]:
    out = []
    for command, parser in sorted(_subcommands().items()):
        for action in parser._actions:
            spec = getattr(action.type, "spec", None)
            if spec is not None:
                out.append((command, action.option_strings[0], spec))
    return out


OPTIONS = _numeric_options()


def test_no_numeric_option_bypasses_the_schema() -> None:
    bare = [
        (command, action.option_strings)
        for command, parser in _subcommands().items()
        for action in parser._actions
        if action.type in (int, float)
    ]
    assert bare == []
    assert len(OPTIONS) >= 15


@st.composite
def _bad_value(draw: Any, spec: Range) -> str:
    kinds = ["text"]
    if spec.lo is not None:
        kinds.append("low")
    if spec.hi is not None:
        kinds.append("high")
    if spec.integer:
        kinds.append("fraction")
    kind = draw(st.sampled_from(kinds))
    step = draw(st.integers(min_value=1, max_value=10**6))
    if kind == "low":
        assert spec.lo is not None
        return str(int(spec.lo) - (step - 1 if spec.lo_open else step))
    if kind == "high":
        assert spec.hi is not None
        return str(int(spec.hi) + (step - 1 if spec.hi_open else step))
    if kind == "fraction":
        return f"{step}.5"
    return draw(st.sampled_from(["many", "", "1e", "nan-ish"]))


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_out_of_range_options_exit_2_and_write_nothing(
    data: st.DataObject, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    command, option, spec = data.draw(st.sampled_from(OPTIONS))
    value = data.draw(_bad_value(spec))
    out = tmp_path / "out"
    capsys.readouterr()
    assert main([command, f"{option}={value}", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert option in err and spec.describe() in err
    assert not out.exists()
