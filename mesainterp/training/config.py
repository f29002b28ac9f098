"""What a training run is: a frozen, validated `TrainConfig`, loadable from TOML/JSON.

The model table may leave out `d_vocab`, `n_ctx` and `d_vocab_out`; they are
filled in from the task (its vocabulary and sequence length), so a config file
only states the shape choices a person actually makes.

`eval_task_params` override the task parameters for held-out evaluation (e.g.
train on `split = "train"` problems, evaluate on `split = "test"`); the
checkpoint records that evaluation task.

A curriculum is a list of stages, each `{until_step, task_params}`: until that
step the task is built with those parameters overriding the base ones (e.g. a
smaller `max_depth` first). After the last stage the base task is used. Every
stage must keep the vocabulary and fit the model's context.

`train_set_size = N` replaces online sampling by a fixed training set: N
instances drawn once from the base task (seed `train_seed(seed, 0)`), from which
every batch is drawn (with replacement). It makes the "memorizer" controls: the
same model and task, trained until that set is memorised, which do poorly on
fresh held-out samples. A fixed set has no curriculum.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from mesainterp.errors import ConfigError, allowed
from mesainterp.model.config import ModelConfig
from mesainterp.tasks.base import Task

__all__ = ["CurriculumStage", "LrSchedule", "TrainConfig", "load_train_config", "resolve_task"]

LrSchedule = Literal["constant", "cosine"]


def resolve_task(name: str, params: dict[str, Any]) -> Task:
    """The task `name` built with `params`, via the task registry."""
    from mesainterp.tasks import get_task

    return get_task(name, **params)


@dataclass(frozen=True, kw_only=True)
class CurriculumStage:
    """Task parameters used for steps `< until_step` (after earlier stages)."""

    until_step: int
    task_params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _positive_int("until_step", self.until_step)
        if not isinstance(self.task_params, dict):
            raise ConfigError("task_params", "expected a table of task parameters")


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """A training run. Everything that changes the resulting weights is here."""

    task: str
    model: ModelConfig
    steps: int
    task_params: dict[str, Any] = field(default_factory=dict)
    eval_task_params: dict[str, Any] = field(default_factory=dict)
    batch_size: int = 64
    lr: float = 1e-3
    warmup_steps: int = 100
    lr_schedule: LrSchedule = "cosine"
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.01
    grad_clip: float | None = 1.0
    eval_every: int = 250
    eval_n: int = 1000
    checkpoint_every: int = 500
    seed: int = 0
    curriculum: tuple[CurriculumStage, ...] = ()
    train_set_size: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.task, str) or not self.task:
            raise ConfigError("task", f"expected a task name, got {self.task!r}")
        if not isinstance(self.model, ModelConfig):
            raise ConfigError("model", "expected a ModelConfig")
        if not isinstance(self.task_params, dict):
            raise ConfigError("task_params", "expected a table of task parameters")
        if not isinstance(self.eval_task_params, dict):
            raise ConfigError("eval_task_params", "expected a table of task parameters")
        for name in ("steps", "batch_size", "eval_every", "eval_n", "checkpoint_every"):
            _positive_int(name, getattr(self, name))
        _nonneg_int("warmup_steps", self.warmup_steps)
        _nonneg_int("seed", self.seed)
        if self.seed >= 2**28:
            raise ConfigError("seed", f"too large: {self.seed}", "an int in [0, 2**28)")
        if self.steps >= 2**32:
            raise ConfigError("steps", f"too large: {self.steps}", "an int < 2**32")
        _positive_float("lr", self.lr)
        _nonneg_float("weight_decay", self.weight_decay)
        if self.grad_clip is not None:
            _positive_float("grad_clip", self.grad_clip)
        if self.lr_schedule not in get_args(LrSchedule):
            raise ConfigError(
                "lr_schedule", f"got {self.lr_schedule!r}", allowed(get_args(LrSchedule))
            )
        if not isinstance(self.min_lr_ratio, int | float) or not 0 <= self.min_lr_ratio <= 1:
            raise ConfigError("min_lr_ratio", f"got {self.min_lr_ratio!r}", "a number in [0, 1]")
        if not isinstance(self.curriculum, tuple) or not all(
            isinstance(s, CurriculumStage) for s in self.curriculum
        ):
            raise ConfigError("curriculum", "expected a tuple of CurriculumStage")
        last = 0
        for stage in self.curriculum:
            if stage.until_step <= last:
                raise ConfigError(
                    "curriculum.until_step",
                    f"{stage.until_step} does not come after {last}",
                    "strictly increasing steps",
                )
            last = stage.until_step
        if last > self.steps:
            raise ConfigError("curriculum.until_step", f"{last} is past steps={self.steps}")
        if self.train_set_size is not None:
            _positive_int("train_set_size", self.train_set_size)
            if self.curriculum:
                raise ConfigError(
                    "train_set_size",
                    "a fixed training set has no curriculum",
                    "None (online sampling) when curriculum is given",
                )

    # ---- tasks -----------------------------------------------------------------
    def build_task(self) -> Task:
        """The task the model is evaluated on (the base parameters)."""
        return resolve_task(self.task, self.task_params)

    def build_eval_task(self) -> Task:
        """The held-out task: the base parameters with `eval_task_params` on top
        (e.g. `{"split": "test"}` when training on `{"split": "train"}`)."""
        return resolve_task(self.task, self.task_params | self.eval_task_params)

    def stage_tasks(self) -> list[tuple[int, Task]]:
        """`(until_step, task)` for every curriculum stage, then `(steps, base task)`,
        each checked against the model (same vocabulary, fits the context)."""
        out = [
            (s.until_step, resolve_task(self.task, self.task_params | s.task_params))
            for s in self.curriculum
        ]
        out.append((self.steps, self.build_task()))
        for until, task in [*out, (self.steps, self.build_eval_task())]:
            where = f"curriculum stage until {until}" if until != self.steps else "task"
            if task.d_vocab != self.model.d_vocab:
                raise ConfigError(
                    "model.d_vocab",
                    f"{self.model.d_vocab} but the {where} has vocabulary {task.d_vocab}",
                )
            if task.seq_len > self.model.n_ctx:
                raise ConfigError(
                    "model.n_ctx",
                    f"{self.model.n_ctx} but the {where} has sequences of {task.seq_len}",
                    f"an int >= {task.seq_len}",
                )
            out_width = self.model.d_vocab_out or self.model.d_vocab
            if task.d_vocab_out != out_width:
                raise ConfigError(
                    "model.d_vocab_out",
                    f"{out_width} but the {where} predicts {task.d_vocab_out} outputs",
                )
        return out

    # ---- (de)serialisation -----------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["model"] = self.model.to_dict()
        out["curriculum"] = [dataclasses.asdict(s) for s in self.curriculum]
        out["task_params"] = dict(self.task_params)
        out["eval_task_params"] = dict(self.eval_task_params)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Build from a mapping (TOML/JSON) through `mesainterp.schema`; a model table
        without `d_vocab`, `n_ctx` or `d_vocab_out` gets them from the task.

        Every refusal names the dotted path, e.g. ``curriculum[1].task_params.max_depth``.
        """
        from mesainterp.schema import check_value, parse, required_fields

        if isinstance(data, TrainConfig):
            return data
        if not isinstance(data, dict):
            raise ConfigError("config", f"expected a table, got {type(data).__name__}")
        known = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ConfigError(unknown[0], "unknown field", allowed(known))
        for name in required_fields(cls):
            if name not in data:
                raise ConfigError(name, "missing required field")
        data = dict(data)
        task_name = check_value("task", data["task"], str)
        task_params = check_value("task_params", data.get("task_params", {}), dict[str, Any])
        base = _checked_task(task_name, task_params, {}, "task_params")
        eval_params = check_value(
            "eval_task_params", data.get("eval_task_params", {}), dict[str, Any]
        )
        _checked_task(task_name, task_params, eval_params, "eval_task_params")
        model = data["model"]
        if isinstance(model, dict):
            model = dict(model)
            if not {"d_vocab", "n_ctx"} <= set(model):
                model.setdefault("d_vocab", base.d_vocab)
                model.setdefault("n_ctx", base.seq_len)
                if base.d_vocab_out != base.d_vocab:
                    model.setdefault("d_vocab_out", base.d_vocab_out)
        data["model"] = check_value("model", model, ModelConfig)
        stages = check_value("curriculum", data.get("curriculum", ()), tuple[CurriculumStage, ...])
        last = 0
        for i, stage in enumerate(stages):
            where = f"curriculum[{i}]"
            if stage.until_step <= last:
                raise ConfigError(
                    f"{where}.until_step",
                    f"{stage.until_step} does not come after {last}",
                    "strictly increasing steps",
                )
            last = stage.until_step
            _checked_task(task_name, task_params, stage.task_params, f"{where}.task_params")
        data["curriculum"] = stages
        data["task_params"] = task_params
        data["eval_task_params"] = eval_params
        steps = data["steps"]
        # A bad `steps` itself is named by the dataclass check below, not here.
        steps_ok = isinstance(steps, int) and not isinstance(steps, bool) and steps > 0
        if stages and steps_ok and last > steps:
            raise ConfigError(
                f"curriculum[{len(stages) - 1}].until_step",
                f"{last} is past steps={steps}",
                f"an int <= {steps}",
            )
        return parse(
            cls,
            data,
            skip=frozenset({"model", "curriculum", "task_params", "eval_task_params"}),
        )

    def replace(self, **changes: Any) -> TrainConfig:
        return dataclasses.replace(self, **changes)


def _checked_task(name: str, base: dict[str, Any], overrides: dict[str, Any], where: str) -> Task:
    """`base | overrides` built and validated; an error in an overridden key is named
    under `where`, one in an inherited key under `task_params`."""
    from mesainterp.tasks.registry import build_task

    try:
        return build_task(name, base | overrides, where="")
    except ConfigError as err:
        head = err.field.split(".", 1)[0].split("[", 1)[0]
        if err.field == "task":
            raise
        # A key the overrides set, or a conflict they create with an inherited key,
        # is the override's fault; anything else is the base table's.
        blame_override = head in overrides or not head or _builds(name, base)
        prefix = where if blame_override else "task_params"
        from mesainterp.schema import rebase

        raise rebase(err, prefix) from None


def _builds(name: str, params: dict[str, Any]) -> bool:
    from mesainterp.tasks.registry import build_task

    try:
        build_task(name, params, where="")
    except ConfigError:
        return False
    return True


def load_train_config(path: str | Path) -> TrainConfig:
    """Read a TrainConfig from a `.toml` or `.json` file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError("config", f"{path}: no such file")
    try:
        text = path.read_bytes().decode("utf-8")
        data = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ConfigError("config", f"{path}: cannot parse ({err})") from None
    return TrainConfig.from_dict(data)


def _positive_int(name: str, value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ConfigError(name, f"expected a positive int, got {value!r}")


def _nonneg_int(name: str, value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ConfigError(name, f"expected a non-negative int, got {value!r}")


def _positive_float(name: str, value: object) -> None:
    if not isinstance(value, int | float) or isinstance(value, bool) or not value > 0:
        raise ConfigError(name, f"expected a positive number, got {value!r}")


def _nonneg_float(name: str, value: object) -> None:
    if not isinstance(value, int | float) or isinstance(value, bool) or not value >= 0:
        raise ConfigError(name, f"expected a non-negative number, got {value!r}")
