"""One schema for every config file and command-line option.

A config is a frozen, keyword-only dataclass; its type annotations are the schema.
`parse(cls, data, path=...)` turns a JSON/TOML mapping into an instance:

- unknown keys are refused, naming the key and the known ones;
- missing required keys are named;
- every value is checked against its annotation (int, float, bool, str, None,
  `Literal` choices, `tuple[X, ...]`, `dict[str, X]`, unions, nested dataclasses,
  and `Annotated[X, Range(...)]` bounds), lists become tuples;
- the dataclass's own `__post_init__` then checks ranges and cross-field rules,
  and its errors are re-raised under the full dotted path
  (``curriculum[1].task_params.max_depth``).

Command-line options use the same bounds: `option(Range(...))` is an argparse
`type=` that refuses out-of-range values with the option name and the range, so
argparse exits with status 2 before a subcommand runs or writes anything.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

from mesainterp.errors import ConfigError, allowed

__all__ = [
    "NON_NEGATIVE",
    "POSITIVE",
    "POSITIVE_NUMBER",
    "Range",
    "check_value",
    "choice_option",
    "describe",
    "join",
    "option",
    "parse",
    "rebase",
    "required_fields",
]

T = TypeVar("T")


@dataclass(frozen=True, kw_only=True)
class Range:
    """Numeric bounds (inclusive unless `lo_open` / `hi_open`); `integer` asks for an int."""

    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False
    integer: bool = True

    def describe(self) -> str:
        kind = "an int" if self.integer else "a number"
        if self.lo is not None and self.hi is not None:
            left = "(" if self.lo_open else "["
            right = ")" if self.hi_open else "]"
            return f"{kind} in {left}{_num(self.lo)}, {_num(self.hi)}{right}"
        if self.lo is not None:
            return f"{kind} {'>' if self.lo_open else '>='} {_num(self.lo)}"
        if self.hi is not None:
            return f"{kind} {'<' if self.hi_open else '<='} {_num(self.hi)}"
        return kind

    def contains(self, value: float) -> bool:
        if isinstance(value, float) and math.isnan(value):
            return False
        if self.lo is not None and (value <= self.lo if self.lo_open else value < self.lo):
            return False
        return not (self.hi is not None and (value >= self.hi if self.hi_open else value > self.hi))

    def check(self, path: str, value: object) -> None:
        """Refuse `value` unless it is a number of the right kind inside the range."""
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(path, f"expected {self.describe()}, got {value!r}", self.describe())
        if self.integer and not isinstance(value, int):
            raise ConfigError(path, f"expected an int, got {value!r}", self.describe())
        if not self.contains(value):
            raise ConfigError(path, f"out of range: {value!r}", self.describe())


POSITIVE = Range(lo=0, lo_open=True)
NON_NEGATIVE = Range(lo=0)
POSITIVE_NUMBER = Range(lo=0, lo_open=True, integer=False)


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(x)


def join(path: str, key: str | int) -> str:
    """`a.b` + `c` -> `a.b.c`; an int key is an index: `a[2]`."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def rebase(err: ConfigError, path: str, *, strip: str | None = None) -> ConfigError:
    """The same error with its field moved under `path` (an optional leading
    `strip.` removed first, e.g. a task's own name)."""
    field = err.field
    rest = str(err)[len(field) + 2 :] if str(err).startswith(f"{field}: ") else str(err)
    if strip is not None and (field == strip or field.startswith(f"{strip}.")):
        field = field[len(strip) + 1 :]
    return ConfigError(join(path, field) if field else path, rest)


def describe(annotation: Any) -> str:
    """A short human name for a type annotation (used in error messages)."""
    if annotation is Any:
        return "any value"
    if annotation is type(None):
        return "null"
    origin = get_origin(annotation)
    if origin is typing.Annotated:
        base, *meta = get_args(annotation)
        ranges = [m for m in meta if isinstance(m, Range)]
        return ranges[0].describe() if ranges else describe(base)
    if origin is Literal:
        return f"one of {allowed(get_args(annotation))}"
    if origin in (Union, types.UnionType):
        return " or ".join(describe(a) for a in get_args(annotation))
    if origin is tuple or origin is list:
        return (
            f"a list of {describe(get_args(annotation)[0])}" if get_args(annotation) else "a list"
        )
    if origin is dict or annotation is dict:
        return "a table"
    if dataclasses.is_dataclass(annotation):
        return "a table"
    return {int: "an int", float: "a number", bool: "true or false", str: "a string"}.get(
        annotation, getattr(annotation, "__name__", str(annotation))
    )


def check_value(path: str, value: Any, annotation: Any) -> Any:
    """`value` checked against `annotation`; returns it normalised (lists -> tuples,
    tables -> nested dataclasses). Errors name `path` and what is allowed."""
    if annotation is Any:
        return value
    origin = get_origin(annotation)
    if origin is typing.Annotated:
        base, *meta = get_args(annotation)
        out = check_value(path, value, base)
        for m in meta:
            if isinstance(m, Range):
                m.check(path, out)
        return out
    if origin is Literal:
        choices = get_args(annotation)
        # bool is an int: True must not match a Literal[1].
        if not any(type(value) is type(c) and value == c for c in choices):
            raise ConfigError(path, f"got {value!r}", allowed(choices))
        return value
    if origin in (Union, types.UnionType):
        members = get_args(annotation)
        if value is None and type(None) in members:
            return None
        errors: list[ConfigError] = []
        for member in members:
            if member is type(None):
                continue
            try:
                return check_value(path, value, member)
            except ConfigError as err:
                errors.append(err)
        if len(errors) == 1:
            raise errors[0]
        raise ConfigError(path, f"got {value!r}", describe(annotation))
    if annotation is type(None):
        if value is not None:
            raise ConfigError(path, f"expected null, got {value!r}", "null")
        return None
    if origin is tuple or origin is list:
        if not isinstance(value, list | tuple):
            raise ConfigError(path, f"expected a list, got {value!r}", describe(annotation))
        args = get_args(annotation)
        item = args[0] if args else Any
        return tuple(check_value(join(path, i), v, item) for i, v in enumerate(value))
    if origin is dict or annotation is dict:
        if not isinstance(value, dict):
            raise ConfigError(path, f"expected a table, got {value!r}", "a table")
        args = get_args(annotation)
        key_type, item = args if args else (str, Any)
        out = {}
        for k, v in value.items():
            if key_type is str and not isinstance(k, str):
                raise ConfigError(path, f"expected string keys, got {k!r}")
            out[k] = check_value(join(path, str(k)), v, item)
        return out
    if isinstance(annotation, type) and dataclasses.is_dataclass(annotation):
        if isinstance(value, annotation):
            return value
        return parse(annotation, value, path=path)
    if annotation is bool:
        if not isinstance(value, bool):
            raise ConfigError(path, f"expected true or false, got {value!r}", "true, false")
        return value
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(path, f"expected an int, got {value!r}", "an int")
        return value
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(path, f"expected a number, got {value!r}", "a number")
        return value
    if annotation is str:
        if not isinstance(value, str):
            raise ConfigError(path, f"expected a string, got {value!r}", "a string")
        return value
    if isinstance(annotation, type):
        if not isinstance(value, annotation):
            raise ConfigError(path, f"expected {describe(annotation)}, got {value!r}")
        return value
    return value


def _fields(cls: type) -> dict[str, tuple[dataclasses.Field[Any], Any]]:
    hints = get_type_hints(cls, include_extras=True)
    return {f.name: (f, hints[f.name]) for f in dataclasses.fields(cls) if f.init}


def required_fields(cls: type) -> list[str]:
    """Fields of dataclass `cls` that have no default."""
    return [
        name
        for name, (f, _) in _fields(cls).items()
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]


def parse(
    cls: type[T],
    data: Any,
    *,
    path: str = "",
    skip: frozenset[str] = frozenset(),
    build: Callable[..., T] | None = None,
) -> T:
    """An instance of dataclass `cls` from a mapping, every field checked (see module doc).

    `skip` names fields passed through unchecked (already parsed by the caller);
    `build` replaces the constructor (default `cls(**values)`).
    """
    where = path or "config"
    if not isinstance(data, Mapping):
        raise ConfigError(where, f"expected a table, got {type(data).__name__}", "a table")
    fields = _fields(cls)
    for key in data:
        if key not in fields:
            raise ConfigError(join(path, str(key)), "unknown field", allowed(sorted(fields)))
    for name in required_fields(cls):
        if name not in data:
            raise ConfigError(join(path, name), "missing required field", describe(fields[name][1]))
    values = {
        key: value if key in skip else check_value(join(path, key), value, fields[key][1])
        for key, value in data.items()
    }
    try:
        return (build or cls)(**values)
    except ConfigError as err:
        raise rebase(err, path) if path else err from None


# ---- command-line options --------------------------------------------------------


def option(spec: Range) -> Callable[[str], float]:
    """An argparse `type=` for a numeric option within `spec`."""

    def convert(text: str) -> float:
        try:
            value: float = int(text) if spec.integer else float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not {'an int' if spec.integer else 'a number'}"
                f" (allowed: {spec.describe()})"
            ) from None
        if not spec.contains(value):
            raise argparse.ArgumentTypeError(f"{text} is out of range (allowed: {spec.describe()})")
        return value

    convert.__name__ = spec.describe()
    # Kept on the converter so tests (and help tools) can read an option's range.
    convert.spec = spec  # type: ignore[attr-defined]
    return convert


def choice_option(choices: tuple[str, ...], *, many: bool = False) -> Callable[[str], Any]:
    """An argparse `type=` for one of `choices`, or (`many`) a comma-separated subset."""

    def convert(text: str) -> Any:
        items = [t.strip() for t in text.split(",") if t.strip()] if many else [text]
        bad = [t for t in items if t not in choices]
        if bad or not items:
            raise argparse.ArgumentTypeError(
                f"{text!r}: unknown value(s) {allowed(bad)} (allowed: {allowed(choices)})"
            )
        return items if many else text

    convert.__name__ = "choice"
    return convert
