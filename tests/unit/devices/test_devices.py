"""cpu/cuda × float32/bfloat16: every analysis runs on the model's device and dtype and
leaves the model's device, dtype, weights and hooks as they were."""

from __future__ import annotations

import pytest
import torch

from tests.unit.devices._analyses import ANALYSES, run_analysis, setup

DEVICES = [
    "cpu",
    pytest.param(
        "cuda",
        marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device"),
    ),
]
DTYPES = [torch.float32, torch.bfloat16]


@pytest.fixture(autouse=True)
def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.mark.parametrize("analysis", sorted(ANALYSES))
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("device", DEVICES)
def test_analysis_keeps_the_model(device: str, dtype: torch.dtype, analysis: str) -> None:
    s = setup(device, dtype)
    run_analysis(analysis, s)
