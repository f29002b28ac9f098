"""The circuit-search config: a TOML file, parsed with tomllib and validated whole.

    [model]
    zoo = "tree-path"            # a shipped model, or: checkpoint = "path/to/dir"

    [task]                       # optional: defaults to the task the model was trained on
    name = "tree-path"           # only needed when the checkpoint records no task
    family = "goal"              # counterfactual family (default: the task's first)
    params = { n_nodes = 12 }    # overrides of the task's parameters

    [search]
    method = "eap-ig"            # eap | eap-ig | acdc | node-attribution
    ablation = "resample"        # how acdc cuts edges: resample | mean | zero
    metric = "task"              # task (the family's default metric) | kl (-KL to clean)
    top_n = 20                   # eap / eap-ig / node-attribution: top_n or threshold
    threshold = 0.05             # acdc: required (metric units)
    ig_steps = 5                 # eap-ig only
    n_examples = 64
    score_chunk = 16             # eap / eap-ig / node-attribution: examples per scoring
                                 # unit (default: all in one); refused for acdc
    positions = "all"            # eap / eap-ig / acdc: "all" | "each" (one node per
                                 # position) | "roles" (per token role: the task's, or
                                 # the [data] roles)
    seed = 0
    max_runs = 500               # optional budget of one call: acdc trial runs, or
                                 # score chunks of the attribution methods
    max_seconds = 3600           # optional budget of one call, in seconds

    [faithfulness]
    ablations = ["resample", "mean", "zero"]
    curve_k = [1, 2, 5, 10, 20]
    n_boot = 1000

    [data]                       # optional: your own prompt pairs instead of the task's
    path = "pairs.csv"           # .csv / .jsonl (mesainterp.prompts.load_prompts); relative
                                 # paths are read from the config file's folder
    tokenizer = "tokenizer/"     # default: the model's HuggingFace folder, if it holds one;
                                 # neither: the file holds token ids
    roles = ["S2", "END"]        # columns holding a token position per row
                                 # with [data], search.n_examples is at most the file's rows

Every error names the dotted field and the allowed values.

`score_chunk` splits the attribution scores, a mean over examples, into units of that
many examples (the last may be shorter), which the Ray executor spreads over workers;
`mesainterp search` and `run_search` use the same chunks, so both give the same circuit.
ACDC decides each edge after the last and does not split, so it refuses the field.

`max_runs` / `max_seconds` bound one call (`discovery.budget`): a search that meets
them stops with a partial circuit (`params["status"] == "partial"`) and `--resume`
continues it with a fresh budget, so they are not part of what a resumed run must
match (`identity_dict`).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, get_type_hints

from mesainterp.discovery.budget import Budget
from mesainterp.errors import ConfigError, allowed

__all__ = [
    "BUDGET_FIELDS",
    "SEARCH_ABLATIONS",
    "SEARCH_METHODS",
    "SEARCH_METRICS",
    "SEARCH_POSITIONS",
    "SearchConfig",
    "load_config",
    "with_data",
]

SEARCH_METHODS = ("eap", "eap-ig", "acdc", "node-attribution")
SEARCH_ABLATIONS = ("resample", "mean", "zero")
SEARCH_METRICS = ("task", "kl")
SEARCH_POSITIONS = ("all", "each", "roles")
# The [search] fields that bound one call; a resumed run may change them.
BUDGET_FIELDS = ("max_runs", "max_seconds")

_TABLES: dict[str, tuple[str, ...]] = {
    "model": ("zoo", "checkpoint"),
    "task": ("name", "family", "params"),
    "search": (
        "method", "ablation", "metric", "top_n", "threshold", "ig_steps", "n_examples", "seed",
        "score_chunk", "positions", *BUDGET_FIELDS,
    ),
    "faithfulness": ("ablations", "curve_k", "n_boot"),
    "data": ("path", "tokenizer", "roles"),
}  # fmt: skip


# TOML keys whose dataclass field is named differently.
_RENAMED: dict[tuple[str, str], str] = {
    ("task", "name"): "task_name",
    ("task", "params"): "task_params",
    ("faithfulness", "ablations"): "faithfulness_ablations",
    ("data", "path"): "data_path",
    ("data", "tokenizer"): "data_tokenizer",
    ("data", "roles"): "data_roles",
}


def _int(where: str, value: Any, lo: int, hi: int | None = None) -> int:
    span = f"an int >= {lo}" if hi is None else f"an int in [{lo}, {hi}]"
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < lo
        or (hi is not None and value > hi)
    ):
        raise ConfigError(where, f"got {value!r}", span)
    return value


def _choice(where: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ConfigError(where, f"got {value!r}", allowed(choices))
    return str(value)


@dataclass(frozen=True, kw_only=True)
class SearchConfig:
    """A validated search config (see the module docstring for the TOML layout)."""

    zoo: str | None = None
    checkpoint: str | None = None
    task_name: str | None = None
    family: str | None = None
    task_params: dict[str, Any] = field(default_factory=dict)
    method: str = "eap"
    ablation: str = "resample"
    metric: str = "task"
    top_n: int | None = None
    threshold: float | None = None
    ig_steps: int = 5
    n_examples: int = 64
    seed: int = 0
    score_chunk: int | None = None
    positions: str = "all"
    max_runs: int | None = None
    max_seconds: float | None = None
    faithfulness_ablations: tuple[str, ...] = SEARCH_ABLATIONS
    curve_k: tuple[int, ...] = (1, 2, 5, 10, 20)
    n_boot: int = 1000
    data_path: str | None = None
    data_tokenizer: str | None = None
    data_roles: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if (self.zoo is None) == (self.checkpoint is None):
            raise ConfigError(
                "model.zoo" if self.zoo is None else "model",
                "give exactly one of model.zoo and model.checkpoint",
            )
        for name in ("zoo", "checkpoint", "task_name", "family"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value):
                where = {"task_name": "task.name", "family": "task.family"}.get(
                    name, f"model.{name}"
                )
                raise ConfigError(where, f"expected a non-empty string, got {value!r}")
        if not isinstance(self.task_params, dict):
            raise ConfigError("task.params", f"expected a table, got {self.task_params!r}")
        _choice("search.method", self.method, SEARCH_METHODS)
        _choice("search.ablation", self.ablation, SEARCH_ABLATIONS)
        _choice("search.metric", self.metric, SEARCH_METRICS)
        if self.top_n is not None:
            _int("search.top_n", self.top_n, 1)
        if self.threshold is not None and (
            isinstance(self.threshold, bool)
            or not isinstance(self.threshold, int | float)
            or not self.threshold >= 0
        ):
            raise ConfigError("search.threshold", f"got {self.threshold!r}", "a number >= 0")
        if self.method == "acdc":
            if self.threshold is None:
                raise ConfigError("search.threshold", "required for method 'acdc'", "a number >= 0")
            if self.top_n is not None:
                raise ConfigError("search.top_n", "not used by method 'acdc'", "leave it out")
        elif (self.top_n is None) == (self.threshold is None):
            raise ConfigError(
                "search.top_n",
                f"method {self.method!r} needs exactly one of search.top_n and search.threshold",
            )
        _choice("search.positions", self.positions, SEARCH_POSITIONS)
        if self.positions != "all" and self.method == "node-attribution":
            raise ConfigError(
                "search.positions", "node-attribution scores nodes over all positions", "'all'"
            )
        _int("search.ig_steps", self.ig_steps, 1, 1000)
        _int("search.n_examples", self.n_examples, 2)
        _int("search.seed", self.seed, 0)
        if self.score_chunk is not None:
            _int("search.score_chunk", self.score_chunk, 1)
            if self.method == "acdc":
                raise ConfigError(
                    "search.score_chunk",
                    "not used by method 'acdc': it decides each edge after the last, so its "
                    "search does not split over examples",
                    "leave it out",
                )
        if self.max_runs is not None:
            _int("search.max_runs", self.max_runs, 1)
        if self.max_seconds is not None and (
            isinstance(self.max_seconds, bool)
            or not isinstance(self.max_seconds, int | float)
            or not self.max_seconds > 0
        ):
            raise ConfigError("search.max_seconds", f"got {self.max_seconds!r}", "a number > 0")
        if not isinstance(self.faithfulness_ablations, tuple) or not self.faithfulness_ablations:
            raise ConfigError(
                "faithfulness.ablations", "expected a non-empty list", allowed(SEARCH_ABLATIONS)
            )
        for i, a in enumerate(self.faithfulness_ablations):
            _choice(f"faithfulness.ablations[{i}]", a, SEARCH_ABLATIONS)
        if not isinstance(self.curve_k, tuple):
            raise ConfigError("faithfulness.curve_k", "expected a list of ints >= 0")
        for i, k in enumerate(self.curve_k):
            _int(f"faithfulness.curve_k[{i}]", k, 0)
        _int("faithfulness.n_boot", self.n_boot, 1)
        if self.data_path is None and (self.data_tokenizer is not None or self.data_roles):
            raise ConfigError("data.path", "missing: data.tokenizer and data.roles need it")
        if self.data_path is not None and (self.task_name is not None or self.task_params):
            field = "task.name" if self.task_name is not None else "task.params"
            raise ConfigError(field, "not used with [data]: the file's pairs are the task")

    @classmethod
    def from_dict(cls, data: Any) -> SearchConfig:
        if not isinstance(data, dict):
            raise ConfigError("config", "expected a TOML table")
        unknown = sorted(set(data) - set(_TABLES))
        if unknown:
            raise ConfigError(unknown[0], "unknown table", allowed(sorted(_TABLES)))
        if "model" not in data:
            raise ConfigError("model", "missing required table", "[model] with zoo or checkpoint")
        from mesainterp.schema import check_value

        hints = get_type_hints(cls)
        flat: dict[str, Any] = {}
        for table, keys in _TABLES.items():
            section = data.get(table, {})
            if not isinstance(section, dict):
                raise ConfigError(table, f"expected a table, got {section!r}")
            bad = sorted(set(section) - set(keys))
            if bad:
                raise ConfigError(f"{table}.{bad[0]}", "unknown field", allowed(keys))
            for key, value in section.items():
                field_name: str = _RENAMED.get((table, str(key)), str(key))
                # The dataclass annotations are the schema: types are checked here
                # under the TOML path, ranges and choices in __post_init__.
                flat[field_name] = check_value(f"{table}.{key}", value, hints[field_name])
        for name in ("threshold", "max_seconds"):
            if isinstance(flat.get(name), int) and not isinstance(flat[name], bool):
                flat[name] = float(flat[name])
        config = cls(**flat)
        _check_task_params(config)
        return config

    def to_dict(self) -> dict[str, Any]:
        """The config as the TOML tables it came from (JSON-able)."""
        model = {"zoo": self.zoo} if self.zoo is not None else {"checkpoint": self.checkpoint}
        task: dict[str, Any] = {"params": dict(self.task_params)}
        if self.task_name is not None:
            task["name"] = self.task_name
        if self.family is not None:
            task["family"] = self.family
        search: dict[str, Any] = {
            "method": self.method,
            "ablation": self.ablation,
            "metric": self.metric,
            "ig_steps": self.ig_steps,
            "n_examples": self.n_examples,
            "seed": self.seed,
        }
        if self.top_n is not None:
            search["top_n"] = self.top_n
        if self.threshold is not None:
            search["threshold"] = self.threshold
        if self.score_chunk is not None:
            search["score_chunk"] = self.score_chunk
        if self.positions != "all":  # left out by default: older configs keep their shape
            search["positions"] = self.positions
        for name in BUDGET_FIELDS:
            if getattr(self, name) is not None:
                search[name] = getattr(self, name)
        out = {
            "model": model,
            "task": task,
            "search": search,
            "faithfulness": {
                "ablations": list(self.faithfulness_ablations),
                "curve_k": list(self.curve_k),
                "n_boot": self.n_boot,
            },
        }
        if self.data_path is not None:
            data: dict[str, Any] = {"path": self.data_path, "roles": list(self.data_roles)}
            if self.data_tokenizer is not None:
                data["tokenizer"] = self.data_tokenizer
            out["data"] = data
        return out

    def identity_dict(self) -> dict[str, Any]:
        """`to_dict` without the budget: what a resumed run must match."""
        out = self.to_dict()
        out["search"] = {k: v for k, v in out["search"].items() if k not in BUDGET_FIELDS}
        return out

    @property
    def budget(self) -> Budget:
        """The budget of one call (`discovery.budget`)."""
        return Budget(max_runs=self.max_runs, max_seconds=self.max_seconds)


def _recorded_task(config: SearchConfig) -> dict[str, Any] | None:
    """The task the config's model records (read from JSON only), or None when the
    model cannot be found here (`prepare` then names the problem)."""
    from mesainterp.errors import MesaInterpError
    from mesainterp.zoo.loader import model_document
    from mesainterp.zoo.registry import list_models

    if config.zoo is not None and config.zoo not in list_models():
        return None
    try:
        document = model_document(config.zoo if config.zoo is not None else str(config.checkpoint))
    except MesaInterpError:
        return None
    task = None if document is None else document.get("task")
    return task if isinstance(task, dict) else None


def _check_task_params(config: SearchConfig) -> None:
    """Refuse bad `task.params` when the file is read, not after the model loads."""
    if not config.task_params:
        return
    from mesainterp.tasks.registry import build_task

    recorded = _recorded_task(config) or {}
    name = config.task_name or recorded.get("name")
    if name is None:
        return
    base = (
        {k: v for k, v in recorded.items() if k != "name"} if recorded.get("name") == name else {}
    )
    build_task(name, base | config.task_params, where="task.params", name_field="task.name")


def load_config(path: str | Path) -> SearchConfig:
    """Read and validate a search config file."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError("config", f"{p}: no such file")
    try:
        data = tomllib.loads(p.read_bytes().decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ConfigError("config", f"{p}: not valid TOML ({err})") from None
    config = SearchConfig.from_dict(data)
    # The data files are read from the config's folder, wherever the search runs.
    folder = p.resolve().parent
    return replace(
        config,
        data_path=None if config.data_path is None else str(folder / config.data_path),
        data_tokenizer=(
            None if config.data_tokenizer is None else str(folder / config.data_tokenizer)
        ),
    )


def with_data(config: SearchConfig, data: dict[str, Any]) -> SearchConfig:
    """`config` searching on the prompt file `data` (`PromptData.to_dict()`, as
    `mesainterp search --data` gives it) instead of its own [data] or task."""
    return replace(
        config,
        data_path=data["path"],
        data_tokenizer=data.get("tokenizer"),
        data_roles=tuple(data.get("roles", ())),
    )
