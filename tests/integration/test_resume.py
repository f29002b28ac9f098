"""Kill real `mesainterp patch` processes at random points; `--resume` finishes the job.

Each case starts the command as a subprocess, waits until some units are on disk
(plus a random extra delay, or kills it at a random early moment), sends SIGINT or
SIGKILL, then resumes. The resumed run must recompute exactly the missing units
and produce the uninterrupted run's table, with no temporary files left behind.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from mesainterp.atomic import TMP_PREFIX
from mesainterp.cli.main import main
from mesainterp.patching import load_result

# (signal, units on disk before the kill; None = a random moment from launch)
CASES = [
    (signal.SIGKILL, 1),
    (signal.SIGINT, 3),
    (signal.SIGKILL, None),
    (signal.SIGINT, 5),
]


def _argv(tiny_checkpoint, out):
    return ["patch", str(tiny_checkpoint), "--sites", "mlp", "--out", str(out),
            "--n", "6", "--n-boot", "50", "--chunk-size", "4", "--method", "hooks"]  # fmt: skip


@pytest.fixture(scope="module")
def reference(tiny_checkpoint, tmp_path_factory):
    out = tmp_path_factory.mktemp("reference") / "run"
    assert main(["--no-progress", *_argv(tiny_checkpoint, out)]) == 0
    return load_result(out).table, len(list((out / "_run" / "units").iterdir()))


def _units(out):
    """Complete units on disk: a SIGKILL can leave a half-written temporary beside them."""
    folder = out / "_run" / "units"
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.glob("*.safetensors") if not p.name.startswith(TMP_PREFIX))


@pytest.mark.parametrize(("sig", "after_units"), CASES)
def test_killed_run_resumes_to_the_same_table(
    tiny_checkpoint, reference, tmp_path, capsys, sig, after_units
):
    table, n_units = reference
    rng = random.Random(f"{sig}-{after_units}")
    out = tmp_path / "run"
    env = {**os.environ, "MESAINTERP_NO_PROGRESS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "mesainterp", *_argv(tiny_checkpoint, out)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 120
        if after_units is None:
            time.sleep(rng.uniform(0.5, 6.0))
        else:
            while len(_units(out)) < after_units and proc.poll() is None:
                assert time.monotonic() < deadline, "the run made no progress"
                time.sleep(0.02)
            time.sleep(rng.uniform(0.0, 0.3))
        proc.send_signal(sig)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    survived = _units(out)
    if proc.returncode == 0:
        pytest.skip("the run finished before the signal arrived")
    if sig == signal.SIGINT and survived:
        # Interrupted inside the command: one line on stderr and exit status 130.
        assert proc.returncode == 130, proc.stderr.read().decode() if proc.stderr else ""
    assert proc.stderr is not None
    proc.stderr.close()

    code = main(["--json", "--no-progress", *_argv(tiny_checkpoint, out), "--resume"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    data = json.loads(captured.out.strip().splitlines()[-1])
    assert data["units_total"] == n_units
    assert data["units_reused"] == len(survived)
    assert data["units_computed"] == n_units - len(survived)
    pd.testing.assert_frame_equal(load_result(out).table, table, check_exact=True)
    assert not [p for p in out.rglob(f"{TMP_PREFIX}*")], "temporary files left behind"
