"""`mesainterp.schema` itself: types from annotations, ranges, paths, rebasing."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Literal

import pytest

from mesainterp.errors import ConfigError
from mesainterp.schema import Range, check_value, join, parse, rebase, required_fields


@dataclass(frozen=True, kw_only=True)
class Inner:
    depth: Annotated[int, Range(lo=1, hi=4)]
    mode: Literal["a", "b"] = "a"


@dataclass(frozen=True, kw_only=True)
class Outer:
    name: str
    inner: Inner
    stages: tuple[Inner, ...] = ()
    rate: Annotated[float, Range(lo=0, lo_open=True, integer=False)] = 1.0
    cap: int | None = None
    params: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.cap is not None and self.cap < len(self.stages):
            raise ConfigError("cap", f"{self.cap} is below the {len(self.stages)} stages")


def _field(data: dict, cls: type = Outer) -> str:
    with pytest.raises(ConfigError) as info:
        parse(cls, data)
    return info.value.field


GOOD = {"name": "x", "inner": {"depth": 2}, "stages": [{"depth": 1}, {"depth": 3, "mode": "b"}]}


def test_a_valid_table_becomes_nested_frozen_values() -> None:
    value = parse(Outer, GOOD)
    assert value.inner == Inner(depth=2)
    assert value.stages == (Inner(depth=1), Inner(depth=3, mode="b"))


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"stages": [{"depth": 1}, {"depth": 9}]}, "stages[1].depth"),
        ({"stages": [{"depth": 1}, {"depth": 2, "mode": "c"}]}, "stages[1].mode"),
        ({"stages": [{"depth": 1}, {"dept": 2}]}, "stages[1].dept"),
        ({"inner": {"mode": "a"}}, "inner.depth"),
        ({"inner": 3}, "inner"),
        ({"rate": 0}, "rate"),
        ({"rate": True}, "rate"),
        ({"cap": "3"}, "cap"),
        ({"cap": 1}, "cap"),
        ({"params": {"k": 1.5}}, "params.k"),
        ({"extra": 1}, "extra"),
    ],
)
def test_errors_name_the_dotted_path(change: dict, where: str) -> None:
    assert _field(GOOD | change) == where


def test_bool_is_not_an_int_and_true_is_not_one() -> None:
    with pytest.raises(ConfigError):
        check_value("x", True, int)
    with pytest.raises(ConfigError):
        check_value("x", True, Literal[1, 2])
    assert check_value("x", 1, Literal[1, 2]) == 1


def test_range_descriptions_are_the_allowed_values() -> None:
    assert Range(lo=1, hi=4).describe() == "an int in [1, 4]"
    assert Range(lo=0, lo_open=True, integer=False).describe() == "a number > 0"
    assert Range(lo=0, hi=2**28, hi_open=True).describe() == "an int in [0, 268435456)"
    with pytest.raises(ConfigError, match=r"allowed: an int in \[1, 4\]"):
        Range(lo=1, hi=4).check("depth", 5)


def test_helpers() -> None:
    assert join("", "a") == "a" and join("a", "b") == "a.b" and join("a", 2) == "a[2]"
    moved = rebase(
        ConfigError("tree-path.max_depth", "out of range: 9"), "x[1].p", strip="tree-path"
    )
    assert moved.field == "x[1].p.max_depth" and "out of range: 9" in str(moved)
    assert required_fields(Outer) == ["name", "inner"]
