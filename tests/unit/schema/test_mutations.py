"""Property-based: mutate valid configs and check the refusal names the mutated path."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mesainterp.discovery.config import SearchConfig
from mesainterp.errors import ConfigError
from mesainterp.schema import join
from mesainterp.training.config import TrainConfig

Path = tuple[str | int, ...]

TRAIN: dict[str, Any] = {
    "task": "tree-path",
    "task_params": {"n_nodes": 7, "max_depth": 3, "test_fraction": 0.1},
    "eval_task_params": {"test_fraction": 0.2},
    "model": {
        "n_layers": 1,
        "d_model": 16,
        "n_heads": 2,
        "d_head": 8,
        "d_mlp": 32,
        "act_fn": "gelu",
        "seed": 0,
    },
    "steps": 20,
    "batch_size": 8,
    "lr": 0.001,
    "warmup_steps": 2,
    "lr_schedule": "cosine",
    "min_lr_ratio": 0.1,
    "weight_decay": 0.01,
    "grad_clip": 1.0,
    "eval_every": 10,
    "eval_n": 16,
    "checkpoint_every": 10,
    "seed": 0,
    "curriculum": [
        {"until_step": 5, "task_params": {"max_depth": 2}},
        {"until_step": 10, "task_params": {"max_depth": 3, "min_goal_depth": 1}},
    ],
}

SEARCH: dict[str, Any] = {
    "model": {"zoo": "tree-path"},
    "task": {"family": "goal", "params": {"n_nodes": 12}},
    "search": {
        "method": "eap-ig",
        "ablation": "resample",
        "metric": "task",
        "top_n": 20,
        "ig_steps": 5,
        "n_examples": 16,
        "score_chunk": 8,
        "seed": 0,
    },
    "faithfulness": {"ablations": ["resample", "zero"], "curve_k": [1, 2, 5], "n_boot": 100},
}

# Keys a config cannot do without (model.d_vocab / n_ctx are filled in from the task).
TRAIN_REQUIRED: list[Path] = [
    ("task",),
    ("model",),
    ("steps",),
    ("model", "n_layers"),
    ("model", "d_model"),
    ("model", "n_heads"),
    ("model", "d_head"),
    ("model", "d_mlp"),
    ("curriculum", 0, "until_step"),
    ("curriculum", 1, "until_step"),
]
SEARCH_REQUIRED: list[Path] = [("model",), ("model", "zoo")]

# Values no field accepts as a number; numbers no string or table field accepts.
OUT_OF_RANGE = {"min_lr_ratio": 1.5, "test_fraction": 1.5, "ig_steps": 10_000, "score_chunk": 0}


def _leaves(data: Any, prefix: Path = ()) -> list[tuple[Path, Any]]:
    if isinstance(data, dict):
        return [leaf for k, v in data.items() for leaf in _leaves(v, (*prefix, k))]
    if isinstance(data, list) and data and isinstance(data[0], dict):
        return [leaf for i, v in enumerate(data) for leaf in _leaves(v, (*prefix, i))]
    return [(prefix, data)]


def _tables(data: Any, prefix: Path = ()) -> list[Path]:
    out: list[Path] = []
    if isinstance(data, dict):
        out.append(prefix)
        for k, v in data.items():
            out += _tables(v, (*prefix, k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            out += _tables(v, (*prefix, i))
    return out


def _dotted(path: Path) -> str:
    out = ""
    for key in path:
        out = join(out, key)
    return out


def _parent(data: Any, path: Path) -> Any:
    for key in path[:-1]:
        data = data[key]
    return data


def _numeric(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _swap(value: Any) -> Any:
    """A value of another type than `value`."""
    if _numeric(value):
        return "seven"
    if isinstance(value, str):
        return 7
    if isinstance(value, list):
        return 3
    return [value]


def _out_of_range(path: Path, value: Any) -> Any:
    return OUT_OF_RANGE.get(str(path[-1]), -1)


def _refusal(parse: Any, data: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as info:
        parse(data)
    return info.value.field


def _mutations(base: dict[str, Any], required: list[Path]) -> st.SearchStrategy[Any]:
    leaves = _leaves(base)
    numeric = [(p, v) for p, v in leaves if _numeric(v)]
    drop = st.tuples(st.just("drop"), st.sampled_from(required), st.none())
    unknown = st.tuples(
        st.just("unknown"),
        st.sampled_from(_tables(base)),
        st.from_regex(r"[a-z]{3,8}_x", fullmatch=True),
    )
    swap = st.tuples(st.just("swap"), st.sampled_from([p for p, _ in leaves]), st.none())
    push = st.tuples(st.just("range"), st.sampled_from([p for p, _ in numeric]), st.none())
    return st.one_of(drop, unknown, swap, push)


def _apply(base: dict[str, Any], mutation: tuple[str, Path, Any]) -> tuple[dict[str, Any], str]:
    kind, path, extra = mutation
    data = copy.deepcopy(base)
    if kind == "unknown":
        table = data
        for key in path:
            table = table[key]
        table[extra] = 1
        return data, _dotted((*path, extra))
    parent = _parent(data, path)
    if kind == "drop":
        del parent[path[-1]]
    elif kind == "swap":
        parent[path[-1]] = _swap(parent[path[-1]])
    else:
        parent[path[-1]] = _out_of_range(path, parent[path[-1]])
    return data, _dotted(path)


FAST = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def test_the_valid_configs_parse() -> None:
    assert TrainConfig.from_dict(copy.deepcopy(TRAIN)).curriculum[1].until_step == 10
    assert SearchConfig.from_dict(copy.deepcopy(SEARCH)).top_n == 20


@FAST
@given(_mutations(TRAIN, TRAIN_REQUIRED))
def test_train_config_mutations_name_the_path(mutation: tuple[str, Path, Any]) -> None:
    data, where = _apply(TRAIN, mutation)
    assert _refusal(TrainConfig.from_dict, data) == where


@FAST
@given(_mutations(SEARCH, SEARCH_REQUIRED))
def test_search_config_mutations_name_the_path(mutation: tuple[str, Path, Any]) -> None:
    data, where = _apply(SEARCH, mutation)
    assert _refusal(SearchConfig.from_dict, data) == where


@pytest.mark.parametrize(
    ("path", "value", "where", "allowed"),
    [
        (("curriculum", 1, "task_params", "max_depth"), 40, "curriculum[1].task_params.max_depth",
         "an int in"),
        (("curriculum", 0, "task_params", "goal_depth"), "deep",
         "curriculum[0].task_params.goal_depth", "'uniform_depth', 'uniform_node'"),
        (("lr_schedule",), "linear", "lr_schedule", "'constant', 'cosine'"),
        (("model", "act_fn"), "tanh", "model.act_fn", "'gelu'"),
        (("eval_task_params", "test_fraction"), 2.0, "eval_task_params.test_fraction",
         "a number in [0.0, 1.0]"),
    ],
)  # fmt: skip
def test_errors_give_the_allowed_values(path: Path, value: Any, where: str, allowed: str) -> None:
    data = copy.deepcopy(TRAIN)
    _parent(data, path)[path[-1]] = value
    with pytest.raises(ConfigError) as info:
        TrainConfig.from_dict(data)
    assert info.value.field == where
    assert allowed in str(info.value)


def test_an_override_that_breaks_an_inherited_key_names_the_override() -> None:
    data = copy.deepcopy(TRAIN)
    data["curriculum"][0]["task_params"] = {"max_depth": 1}  # 7 nodes do not fit depth 1
    with pytest.raises(ConfigError) as info:
        TrainConfig.from_dict(data)
    assert info.value.field.startswith("curriculum[0].task_params.")


def _every_mutation(base: dict[str, Any], required: list[Path]) -> list[tuple[str, Path, Any]]:
    leaves = _leaves(base)
    return (
        [("drop", p, None) for p in required]
        + [("unknown", p, "bogus_x") for p in _tables(base)]
        + [("swap", p, None) for p, _ in leaves]
        + [("range", p, None) for p, v in leaves if _numeric(v)]
    )


def test_every_single_mutation_is_named() -> None:
    """The exhaustive companion of the property tests (same mutations, each once)."""
    misses = []
    for base, required, parse in (
        (TRAIN, TRAIN_REQUIRED, TrainConfig.from_dict),
        (SEARCH, SEARCH_REQUIRED, SearchConfig.from_dict),
    ):
        for mutation in _every_mutation(base, required):
            data, where = _apply(base, mutation)
            try:
                parse(data)
            except ConfigError as err:
                if err.field != where:
                    misses.append((mutation, err.field))
            else:
                misses.append((mutation, "accepted"))
    assert misses == []
