"""Executors: run a plan's missing units and store each result the moment it arrives.

A worker is described by a `WorkerSpec` (an importable factory and JSON-able
arguments), never by a pickled model: each worker builds itself once (loading the
model from its zoo name or checkpoint path) and then runs any number of units.

    inprocess  one worker in this process (the default)
    ray        one Ray actor per worker on an existing cluster (`address`) or a
               local one started here with `workers` CPUs; Ray is the optional
               extra `distributed` and is imported only here.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, get_args

from torch import Tensor

from mesainterp.errors import ConfigError, MesaInterpError, allowed
from mesainterp.progress import progress_bar
from mesainterp.runs.plan import RunPlan, WorkUnit
from mesainterp.runs.state import RunState

__all__ = [
    "EXECUTORS",
    "ExecutionStats",
    "ExecutorName",
    "UnitWorker",
    "WorkerSpec",
    "build_worker",
    "execute",
    "start_local_cluster",
]

ExecutorName = Literal["inprocess", "ray"]
EXECUTORS: tuple[str, ...] = get_args(ExecutorName)
UnitOutput = tuple[dict[str, Tensor], dict[str, Any]]
RAY_MISSING = "--executor ray needs Ray: pip install 'mesainterp[distributed]'"


class UnitWorker(Protocol):
    def run(self, unit: WorkUnit) -> UnitOutput: ...


@dataclass(frozen=True, kw_only=True)
class WorkerSpec:
    """`factory` is 'module:callable'; `factory(**kwargs)` returns a `UnitWorker`.

    `threads`: torch threads for a Ray actor (default: Ray's one per actor). Jobs
    whose float sums depend on the thread count (a backward pass) pass the driver's,
    so an actor computes what the in-process executor computes, bit for bit.
    """

    factory: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    threads: int | None = None

    def __post_init__(self) -> None:
        if ":" not in self.factory:
            raise ConfigError("factory", f"got {self.factory!r}", "'package.module:callable'")


def build_worker(spec: WorkerSpec) -> UnitWorker:
    module, _, name = spec.factory.partition(":")
    factory: Callable[..., UnitWorker] = getattr(importlib.import_module(module), name)
    return factory(**spec.kwargs)


@dataclass(frozen=True, kw_only=True)
class ExecutionStats:
    total: int
    computed: int
    reused: int
    executor: str
    workers: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "units_total": self.total,
            "units_computed": self.computed,
            "units_reused": self.reused,
            "executor": self.executor,
            "workers": self.workers,
        }

    def describe(self) -> str:
        return (
            f"units: {self.computed} computed, {self.reused} reused of {self.total} "
            f"({self.executor}, {self.workers} worker{'s' if self.workers != 1 else ''})"
        )


def execute(
    spec: WorkerSpec,
    plan: RunPlan,
    state: RunState,
    *,
    executor: str = "inprocess",
    workers: int = 1,
    address: str | None = None,
    local_worker: UnitWorker | None = None,
    progress: bool | None = None,
) -> ExecutionStats:
    """Compute the units of `plan` that `state` lacks; each is saved as it finishes.

    `local_worker` reuses a worker already built in this process (in-process only).
    """
    if executor not in EXECUTORS:
        raise ConfigError("executor", f"got {executor!r}", allowed(EXECUTORS))
    if not isinstance(workers, int) or workers < 1:
        raise ConfigError("workers", f"expected an int >= 1, got {workers!r}")
    done = state.done_keys()
    missing = [u for u in plan.units if u.key not in done]
    if executor == "inprocess":
        results = _inprocess(spec, missing, local_worker)
        n_workers = 1
    else:
        results = _ray_results(spec, missing, workers=workers, address=address)
        n_workers = workers
    for unit, (tensors, meta) in progress_bar(
        results, desc="units", total=len(missing), unit="unit", progress=progress
    ):
        state.save_unit(unit.key, tensors, {**meta, "unit": unit.index})
    return ExecutionStats(
        total=len(plan),
        computed=len(missing),
        reused=len(plan) - len(missing),
        executor=executor,
        workers=n_workers,
    )


def _inprocess(
    spec: WorkerSpec, units: list[WorkUnit], worker: UnitWorker | None
) -> Iterator[tuple[WorkUnit, UnitOutput]]:
    if not units:
        return
    worker = worker if worker is not None else build_worker(spec)
    for unit in units:
        yield unit, worker.run(unit)


def start_local_cluster(num_cpus: int, *, attempts: int = 3) -> None:
    """`ray.init` a local cluster, retrying: on a loaded machine Ray's agents can start
    too slowly for the raylet's fixed wait, a failure that passes on a second try."""
    try:
        import ray
    except ImportError:
        raise MesaInterpError(RAY_MISSING) from None
    for attempt in range(attempts):
        try:
            ray.init(
                num_cpus=num_cpus,
                include_dashboard=False,
                log_to_driver=False,
                _system_config={"agent_register_timeout_ms": 180_000},
            )
            return
        except Exception as err:  # Ray raises a bare Exception on a startup timeout
            ray.shutdown()
            if attempt == attempts - 1:
                raise MesaInterpError(f"could not start a local Ray cluster: {err}") from None


class _Actor:
    """Body of a Ray actor: builds its worker (and model) once, then runs units."""

    def __init__(self, spec: WorkerSpec) -> None:
        if spec.threads is not None:
            import torch

            torch.set_num_threads(spec.threads)
        self.worker = build_worker(spec)

    def run(self, unit: WorkUnit) -> UnitOutput:
        return self.worker.run(unit)


def _ray_results(
    spec: WorkerSpec, units: list[WorkUnit], *, workers: int, address: str | None
) -> Iterator[tuple[WorkUnit, UnitOutput]]:
    try:
        import ray
    except ImportError:
        raise MesaInterpError(RAY_MISSING) from None
    if not units:
        return
    started = False
    if not ray.is_initialized():
        if address is not None:
            ray.init(address=address, log_to_driver=False)
        else:
            start_local_cluster(workers)
        started = True
    actor_cls = ray.remote(num_cpus=1)(_Actor)
    actors: list[Any] = [actor_cls.remote(spec) for _ in range(min(workers, len(units)))]
    try:
        queue = list(units)
        pending: dict[Any, tuple[WorkUnit, Any]] = {}

        def submit(actor: Any) -> None:
            unit = queue.pop(0)
            pending[actor.run.remote(unit)] = (unit, actor)

        for actor in actors:
            if queue:
                submit(actor)
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            unit, actor = pending.pop(ready[0])
            if queue:
                submit(actor)  # keep the actor busy while the driver stores the result
            yield unit, ray.get(ready[0])
    finally:
        for actor in actors:
            ray.kill(actor)
        if started:
            ray.shutdown()
