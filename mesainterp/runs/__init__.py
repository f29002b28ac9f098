"""Runs that survive faults and scale: atomic writes, resumable unit plans, executors."""

from mesainterp.runs.atomic import (
    atomic_write,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
)
from mesainterp.runs.executor import EXECUTORS, ExecutionStats, WorkerSpec, execute
from mesainterp.runs.plan import RunPlan, WorkUnit, chunk_plan
from mesainterp.runs.state import RunDirNotEmpty, RunMismatch, RunState, open_run

__all__ = [
    "EXECUTORS",
    "ExecutionStats",
    "RunDirNotEmpty",
    "RunMismatch",
    "RunPlan",
    "RunState",
    "WorkUnit",
    "WorkerSpec",
    "atomic_write",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "chunk_plan",
    "execute",
    "open_run",
]
