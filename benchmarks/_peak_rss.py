"""Peak resident-memory growth of a block of code, for the benchmarks' memory columns.

torch's CPU allocator keeps no statistics, so resident memory (/proc/self/statm) is
sampled every millisecond on a thread while the block runs. Freed memory stays
resident, so measure one operation per fresh process.
"""

from __future__ import annotations

import os
import threading
import time
from types import TracebackType

__all__ = ["PeakRss", "rss_kb"]


def rss_kb() -> int:
    """This process's resident memory in KiB."""
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


class PeakRss:
    """`with PeakRss() as peak: ...` then `peak.growth_kb`: peak minus the starting RSS."""

    def __init__(self, interval_s: float = 0.001) -> None:
        self.interval_s = interval_s
        self.growth_kb = 0
        self._stop = threading.Event()
        self._peak = 0
        self._start = 0

    def _sample(self) -> None:
        while not self._stop.is_set():
            self._peak = max(self._peak, rss_kb())
            time.sleep(self.interval_s)

    def __enter__(self) -> PeakRss:
        self._start = self._peak = rss_kb()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()
        self.growth_kb = max(self._peak, rss_kb()) - self._start
