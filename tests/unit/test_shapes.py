"""Shapes in signatures are checked in the test suite.

The suite runs with MESAINTERP_TYPECHECK=1 (tests/conftest.py), so every
`@shape_checked` function checks its jaxtyping annotations under beartype. These
tests show the wiring is on, that a call with mismatched shapes is refused by the
checker, that every public tensor-taking function carries the check and no bare
`Tensor`, and that every dimension name comes from `mesainterp.shapes.DIMS`.
"""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest
import torch
from jaxtyping import Float, Int, TypeCheckError
from torch import Tensor

import mesainterp
from mesainterp import shapes
from mesainterp.shapes import DIMS, is_shape_checked, shape_checked

if TYPE_CHECKING:
    from mesainterp.discovery import Circuit  # only for the type checker

PACKAGES = ("patching", "attribution", "probes", "sites", "prompts", "discovery")
TENSOR = re.compile(r"\bTensor\b|\bModelInput\b|\bReferenceInput\b")
BARE = re.compile(r"\bTensor\b(?!,\s*[\"'])")  # not the first argument of Float[...] etc.
DIM_STRING = re.compile(r"\[Tensor,\s*([\"'])(.*?)\1\]")


def _public_functions() -> Iterator[tuple[str, Callable[..., Any]]]:
    """Every function, and public method of a class, named in `mesainterp.__all__` or in
    the `__all__` of the measurement subpackages."""
    sources = [("mesainterp", mesainterp)] + [
        (f"mesainterp.{name}", importlib.import_module(f"mesainterp.{name}")) for name in PACKAGES
    ]
    seen: set[int] = set()
    for prefix, module in sources:
        for name in module.__all__:
            obj = getattr(module, name)
            if inspect.isfunction(obj):
                members = [(f"{prefix}.{name}", obj)]
            elif inspect.isclass(obj) and obj.__module__.startswith("mesainterp"):
                members = []
                for attr, value in vars(obj).items():
                    fn = value.__func__ if isinstance(value, (classmethod, staticmethod)) else value
                    if inspect.isfunction(fn) and (attr == "__call__" or not attr.startswith("_")):
                        members.append((f"{prefix}.{name}.{attr}", fn))
            else:
                continue
            for label, fn in members:
                if id(inspect.unwrap(fn)) not in seen:
                    seen.add(id(inspect.unwrap(fn)))
                    yield label, fn


def _annotations(fn: Callable[..., Any]) -> dict[str, str]:
    return {k: str(v) for k, v in inspect.unwrap(fn).__annotations__.items()}


PUBLIC = dict(_public_functions())
TENSOR_TAKING = {
    label: fn
    for label, fn in PUBLIC.items()
    if any(TENSOR.search(a) for a in _annotations(fn).values())
}


def test_the_suite_runs_with_shapes_checked() -> None:
    """Fails if tests/conftest.py stops setting MESAINTERP_TYPECHECK=1 first."""
    assert shapes.CHECKING
    assert hasattr(mesainterp.patch, "__wrapped__"), "mesainterp.patch is not wrapped"


def test_the_scan_sees_the_public_api() -> None:
    assert "mesainterp.patch" in TENSOR_TAKING
    assert "mesainterp.probes.LinearProbe.decision" in TENSOR_TAKING
    assert "mesainterp.PromptPairs.from_token_ids" in TENSOR_TAKING
    assert len(TENSOR_TAKING) >= 50, sorted(TENSOR_TAKING)


@pytest.mark.parametrize("label", sorted(TENSOR_TAKING))
def test_public_tensor_function_is_checked_with_shapes(label: str) -> None:
    fn = TENSOR_TAKING[label]
    assert is_shape_checked(fn), f"{label}: no @shape_checked"
    bare = {k: a for k, a in _annotations(fn).items() if BARE.search(a)}
    assert not bare, f"{label}: bare Tensor annotations {bare}; say the shape"


def _dims(annotation: str) -> list[str]:
    """'Float[Tensor, " batch *act"]' -> ['batch', 'act'] (modifiers and wildcards dropped)."""
    names = []
    for _, spec in DIM_STRING.findall(annotation):
        for token in spec.split():
            name = token.lstrip("*#_?")
            if name and name != "..." and not name.isdigit():
                names.append(name)
    return names


def test_dimension_names_come_from_the_vocabulary() -> None:
    used: dict[str, set[str]] = {}
    for label, fn in TENSOR_TAKING.items():
        for annotation in _annotations(fn).values():
            for name in _dims(annotation):
                used.setdefault(name, set()).add(label)
    for alias in (shapes.ModelInput, shapes.ReferenceInput):
        for name in _dims(str(alias).replace("jaxtyping.", "").replace("torch.", "")):
            used.setdefault(name, set()).add("mesainterp.shapes")
    unknown = {name: sorted(where)[:3] for name, where in used.items() if name not in DIMS}
    assert not unknown, f"dimension names missing from shapes.DIMS: {unknown}"
    assert not set(DIMS) - set(used), (
        f"DIMS names no checked function uses: {set(DIMS) - set(used)}"
    )


def test_dims_of_an_annotation() -> None:
    assert _dims('Float[Tensor, " batch *act"] | None') == ["batch", "act"]
    assert _dims("list[Float[Tensor, '#batch #pos d_model']]") == ["batch", "pos", "d_model"]
    assert _dims('Float[Tensor, "_ d_model"]') == ["d_model"]
    assert _dims('Shaped[Tensor, "n ..."]') == ["n"]


# -- wrong shapes are refused by the checker -------------------------------------------


def _metric(logits: Tensor) -> Tensor:
    return logits[:, -1, 0]


def _pair_calls() -> dict[str, Callable[..., Any]]:
    from mesainterp.attribution import edge_attribution, node_attribution
    from mesainterp.discovery import acdc
    from mesainterp.patching import Receiver, path_patch
    from mesainterp.sites import Site

    z = [Site(kind="z", layer=0, head=0)]
    return {
        "patch": lambda model, **kw: mesainterp.patch(model, z, **kw),
        "path_patch": lambda model, **kw: path_patch(model, z, [Receiver(kind="logits")], **kw),
        "node_attribution": lambda model, **kw: node_attribution(model, z, **kw),
        "edge_attribution": lambda model, **kw: edge_attribution(model, **kw),
        "acdc": lambda model, **kw: acdc(model, threshold=0.1, **kw),
    }


@pytest.mark.parametrize("name", sorted(_pair_calls()))
def test_clean_and_corrupted_of_different_lengths_are_refused(name: str, tiny_model) -> None:
    call = _pair_calls()[name]
    clean = torch.zeros(2, 5, dtype=torch.long)
    with pytest.raises(TypeCheckError, match="parameter 'corrupted'") as caught:
        call(tiny_model, clean=clean, corrupted=torch.zeros(2, 6, dtype=torch.long), metric=_metric)
    assert "pos=5" in str(caught.value)  # the size bound by `clean`


def test_a_reference_of_another_width_is_refused(tiny_model) -> None:
    """Embedding inputs bind d_model; a reference may differ in batch and positions only."""
    circuit = mesainterp.Circuit.from_edges({}, method="manual")
    clean = torch.zeros(2, 5, 32)  # embeddings: d_model = 32
    with pytest.raises(TypeCheckError, match="parameter 'reference'"):
        mesainterp.faithfulness(
            tiny_model, circuit, clean=clean, corrupted=clean, metric=_metric,
            reference=torch.zeros(3, 4, 7),
        )  # fmt: skip
    mesainterp.faithfulness(  # a reference of other batch and positions passes the check
        tiny_model, circuit, clean=clean, corrupted=clean, metric=_metric,
        reference=torch.zeros(3, 4, 32), ablations=("mean",), n_boot=10,
    )  # fmt: skip


def test_probe_features_of_the_wrong_rank_are_refused() -> None:
    from mesainterp.probes import fit_logistic

    y = torch.zeros(10, dtype=torch.long)
    with pytest.raises(TypeCheckError, match="parameter 'x'"):
        fit_logistic(torch.randn(10, 4), y)  # [n, d]: the sites dimension is missing
    with pytest.raises(TypeCheckError, match="parameter 'y'"):
        fit_logistic(torch.randn(1, 10, 4), y[:9])  # 9 labels for 10 examples


def test_prompt_pairs_of_different_lengths_are_refused() -> None:
    clean = torch.tensor([[1, 2, 3], [4, 5, 6]])
    with pytest.raises(TypeCheckError, match="parameter 'corrupted'"):
        mesainterp.PromptPairs.from_token_ids(clean, clean[:, :2], [1, 2], [2, 1])


def test_a_wrong_return_shape_is_refused() -> None:
    @shape_checked
    def first_row(x: Float[Tensor, "batch pos"]) -> Float[Tensor, " pos"]:
        return x[:, 0]  # [batch], not [pos]

    with pytest.raises(TypeCheckError, match="return"):
        first_row(torch.zeros(2, 3))


# -- the decorator itself -----------------------------------------------------------------


def _ids(x: Int[Tensor, " batch"], other: Circuit | None = None) -> int:
    return int(x.sum())


def test_names_only_a_type_checker_sees_are_not_checked() -> None:
    """`Circuit` is imported under TYPE_CHECKING here: left unchecked, not an error."""
    ids = shape_checked(_ids)
    assert ids(torch.tensor([1, 2]), other="anything") == 3
    with pytest.raises(TypeCheckError, match="parameter 'x'"):
        ids(torch.tensor([[1, 2]]))


def test_it_must_sit_directly_on_the_function() -> None:
    """Above another wrapper the annotations would be read in the wrapper's module."""
    with pytest.raises(TypeError, match="directly on the function"):
        shape_checked(torch.no_grad()(_ids))


def test_it_is_a_no_op_when_checking_is_off(monkeypatch) -> None:
    monkeypatch.setattr(shapes, "CHECKING", False)

    def double(x: Float[Tensor, " n"]) -> Float[Tensor, " n"]:
        return 2 * x

    assert shape_checked(double) is double
    assert is_shape_checked(double)
