"""Run the device and dtype checks of tests/unit/devices on a GPU and print a short report.

    python scripts/gpu_check.py                  # cuda x {float32, bfloat16}
    python scripts/gpu_check.py --device cpu     # the same checks on the CPU

For every analysis (patching fast / hooks, node attribution, EAP, EAP-IG, faithfulness,
probe collection) on a model built on the device in the dtype, from inputs made on the
CPU: it must run, give finite values, and leave the model's device, dtype, weights
(fingerprint) and hooks unchanged. The report also counts the activation-sized tensors
(3-D and up) the analysis made on each device, to show where the work ran, and the peak
GPU memory. Exit status 1 if any check failed, 0 otherwise (also when no GPU is present).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.unit.devices._analyses import ANALYSES, run_analysis, setup

__all__ = ["main"]


class _Where(TorchFunctionMode):
    """Counts the activation-sized tensors torch functions return, by device."""

    def __init__(self) -> None:
        super().__init__()
        self.devices: Counter[str] = Counter()

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, tuple | list) else (out,):
            if isinstance(t, torch.Tensor) and t.ndim >= 3:
                self.devices[t.device.type] += 1
        return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda (default), cuda:1, cpu, ...")
    parser.add_argument("--dtypes", default="float32,bfloat16", help="comma-separated")
    args = parser.parse_args(argv)
    os.environ.setdefault("MESAINTERP_NO_PROGRESS", "1")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("gpu_check: no CUDA device here; nothing to check (run with --device cpu)")
        return 0
    dtypes = [getattr(torch, d.strip()) for d in args.dtypes.split(",") if d.strip()]
    name = (
        torch.cuda.get_device_name(torch.device(args.device))
        if args.device.startswith("cuda")
        else "cpu"
    )
    print(f"gpu_check on {args.device} ({name}), torch {torch.__version__}")
    failures = 0
    for dtype in dtypes:
        for analysis in sorted(ANALYSES):
            if args.device.startswith("cuda"):
                torch.cuda.reset_peak_memory_stats()
            s = setup(args.device, dtype)
            start = time.perf_counter()
            try:
                with _Where() as where:
                    note = run_analysis(analysis, s)
                status = "ok"
            except Exception as err:  # report every failure, keep checking the rest
                status, note = "FAIL", f"{type(err).__name__}: {str(err).splitlines()[0][:160]}"
                failures += 1
            elapsed = time.perf_counter() - start
            made = ", ".join(f"{k} {v}" for k, v in sorted(where.devices.items())) or "-"
            peak = (
                f", peak {torch.cuda.max_memory_allocated() / 2**20:.1f} MiB"
                if args.device.startswith("cuda")
                else ""
            )
            print(
                f"  {str(dtype).removeprefix('torch.'):<9} {analysis:<17} {status:<4} "
                f"{elapsed * 1000:7.0f} ms  activations made on: {made}{peak}  | {note}"
            )
    print(f"{failures} failed" if failures else "all checks passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
