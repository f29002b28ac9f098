"""Self-contained HTML reports and static figure folders from run directories.

See `mesainterp.report.rundir` for the run-directory convention.
"""

from mesainterp.report.html import build_report, write_report, write_static_figures
from mesainterp.report.rundir import Result, Run, RunDirError, load_run, read_table, write_run
from mesainterp.report.sections import Section, sections_from_run

__all__ = [
    "Result",
    "Run",
    "RunDirError",
    "Section",
    "build_report",
    "load_run",
    "read_table",
    "sections_from_run",
    "write_report",
    "write_run",
    "write_static_figures",
]
