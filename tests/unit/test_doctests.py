"""Every public name of `import mesainterp` carries a runnable `>>>` example, and
the examples print what they say they print."""

from __future__ import annotations

import doctest
from typing import Any

import pytest
import torch

import mesainterp

# `__version__` is a string: its docstring is str's own.
DOCUMENTED = sorted(name for name in mesainterp.__all__ if name != "__version__")
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def examples_of(obj: Any, name: str) -> doctest.DocTest:
    """The docstring examples of `obj` itself (not of its methods); an error if none.

    They run in the defining module's namespace, with `mesainterp` and `torch` imported.
    """
    extra = {"mesainterp": mesainterp, "torch": torch}
    found = doctest.DocTestFinder(recurse=False).find(obj, name, extraglobs=extra)
    tests = [t for t in found if t.examples]
    if not tests:
        raise AssertionError(f"{name}: docstring has no >>> example")
    return tests[0]


def run_examples(obj: Any, name: str) -> doctest.TestResults:
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    test = examples_of(obj, name)
    torch.manual_seed(0)  # examples that draw random tokens print the same numbers
    runner.run(test)
    return runner.summarize(verbose=False)


@pytest.mark.parametrize("name", DOCUMENTED)
def test_public_name_has_a_passing_example(name: str) -> None:
    result = run_examples(getattr(mesainterp, name), f"mesainterp.{name}")
    assert result.attempted > 0
    assert result.failed == 0, f"mesainterp.{name}: {result.failed} example(s) failed (see stdout)"


def _undocumented(x: int) -> int:
    """Adds one."""
    return x + 1


def _wrong_output(x: int) -> int:
    """Adds one.

    >>> 1 + 1
    3
    """
    return x + 1


def test_a_name_without_an_example_fails() -> None:
    with pytest.raises(AssertionError, match="_undocumented: docstring has no >>> example"):
        examples_of(_undocumented, "_undocumented")


def test_an_example_with_wrong_output_fails() -> None:
    result = run_examples(_wrong_output, "_wrong_output")
    assert (result.attempted, result.failed) == (1, 1)
