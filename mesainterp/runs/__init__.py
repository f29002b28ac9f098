"""Runs that survive faults and scale: resumable unit plans, executors, and the
resumable pipelines behind `mesainterp patch` and `mesainterp search`.

The atomic writer they all use is the leaf module `mesainterp.atomic`.
"""

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
    "chunk_plan",
    "execute",
    "open_run",
]
