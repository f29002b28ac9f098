"""No leaks: 50 repeated analyses in one process on a tiny model.

For each analysis (patching sweeps, attribution, faithfulness, probe collection):
- the number of live tensors and Python-heap memory (tracemalloc) stop growing after
  a warm-up, and each call's peak stays at the warm-up's peak;
- weak references to the activations that flowed through the model die after each call;
- no hook is left on any hook point (TransformerLens's and torch's own registries), and
  no parameter is left holding a gradient.
"""

from __future__ import annotations

import gc
import tracemalloc
import warnings
import weakref
from collections.abc import Iterator
from typing import Any

import pytest
import torch
from torch.overrides import TorchFunctionMode

from mesainterp.model import model_shape
from mesainterp.patching import count_hooks, patch_pair
from mesainterp.sites import head_sites
from tests.unit.devices._analyses import ANALYSES, Setup, setup

REPEATS = 50
WARMUP = 5
# Python-heap growth allowed over the 45 calls after warm-up (caches that fill once
# per call site): under 1 KB a call, far below one leaked result per call.
HEAP_SLACK = 32 * 1024
# TransformerLens keeps a few strings per hook lookup in its alias resolution (it
# levels off); that is its business, not a leak of ours, so heap growth is counted
# outside its files (and outside tracemalloc's own bookkeeping).
_OURS = [
    tracemalloc.Filter(False, "*/transformer_lens/*"),
    tracemalloc.Filter(False, tracemalloc.__file__),
]


def _patch_heads(method: str) -> Any:
    # Head sites only: 50 calls of a sweep stay short under tracemalloc.
    def run(s: Setup) -> str:
        sites = head_sites(model_shape(s.model))
        patch_pair(s.model, s.pair, sites, metric=s.metric, method=method, n_boot=20)
        return "ok"

    return run


# Patching sweeps (fast and hook paths), attribution (nodes, edges), probe collection.
LEAK_CHECKED = {
    "patch-fast": _patch_heads("fast"),
    "patch-hooks": _patch_heads("hooks"),
    "node-attribution": ANALYSES["node-attribution"],
    "eap": ANALYSES["eap"],
    "probe-collection": ANALYSES["probe-collection"],
}


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("MESAINTERP_NO_PROGRESS", "1")
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _torch_hooks(model: Any) -> int:
    return sum(
        len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
        + len(getattr(m, "_backward_pre_hooks", {}))
        for m in model.modules()
    )  # fmt: skip


def _live_tensors() -> tuple[int, int]:
    """(count, storage bytes) of every live tensor."""
    live = _tensors()
    storages = {t.untyped_storage().data_ptr(): t.untyped_storage().nbytes() for t in live}
    return len(live), sum(storages.values())


class _Activations(TorchFunctionMode):
    """Weak references to every batch-shaped tensor a torch function returns in a call
    (activations, caches, gradients), whichever path made it: bridge, hooks or the
    hook-free fast forward. Installs nothing on the model."""

    def __init__(self, batch_sizes: set[int]) -> None:
        super().__init__()
        self.batch_sizes = batch_sizes
        self.refs: list[weakref.ref[torch.Tensor]] = []

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, tuple | list) else (out,):
            if isinstance(t, torch.Tensor) and t.ndim >= 2 and t.shape[0] in self.batch_sizes:
                self.refs.append(weakref.ref(t))
        return out

    def alive(self, exclude: set[int]) -> list[tuple[int, ...]]:
        """Shapes of the tracked tensors still alive, except those in `exclude` (ids of
        tensors that existed before the call, e.g. the model's weights and the inputs)."""
        gc.collect()
        return [
            tuple(t.shape) for r in self.refs if (t := r()) is not None and id(t) not in exclude
        ]


def _tensors() -> list[torch.Tensor]:
    gc.collect()
    with warnings.catch_warnings():
        # isinstance on some of torch's deprecated module proxies warns; irrelevant here.
        warnings.simplefilter("ignore")
        return [o for o in gc.get_objects() if isinstance(o, torch.Tensor)]


def _tensor_ids() -> set[int]:
    return {id(t) for t in _tensors()}


@pytest.mark.slow
@pytest.mark.parametrize("analysis", sorted(LEAK_CHECKED))
def test_repeated_analysis_does_not_grow(analysis: str) -> None:
    s = setup("cpu", torch.float32, n=4)
    model, run = s.model, LEAK_CHECKED[analysis]
    # The bridge installs its own hooks once, on its first forward; ours must never stay.
    run(s)
    hooks_before, torch_hooks_before = count_hooks(model), _torch_hooks(model)
    n = s.pair.clean.batch_size
    peaks: list[int] = []
    tensors: list[tuple[int, int]] = []
    snapshots: list[tracemalloc.Snapshot] = []
    for i in range(REPEATS):
        if i == WARMUP:
            tracemalloc.start()
        tracked = i in (WARMUP, REPEATS - 1)
        if tracemalloc.is_tracing():
            tracemalloc.reset_peak()
            before = tracemalloc.get_traced_memory()[0]
        if tracked:
            existing = _tensor_ids()
            with _Activations({n, 2 * n}) as seen:
                run(s)
            survivors = seen.alive(existing)
            assert seen.refs, "the tracker saw no activations"
            assert survivors == [], f"call {i}: activations outlive the call: {survivors}"
        else:
            run(s)
        if tracemalloc.is_tracing() and not tracked:
            # The call's own peak above what was held before it.
            peaks.append(tracemalloc.get_traced_memory()[1] - before)
        if i + 1 in (WARMUP + 1, REPEATS // 2, REPEATS):
            tensors.append(_live_tensors())
            snapshots.append(tracemalloc.take_snapshot().filter_traces(_OURS))
        assert all(p.grad is None for p in model.parameters()), "a gradient was left"
    tracemalloc.stop()
    assert count_hooks(model) == hooks_before
    assert _torch_hooks(model) == torch_hooks_before
    # (count, bytes) of live tensors after the warm-up, half way and at the end.
    assert tensors[1] <= tensors[0] and tensors[2] <= tensors[0], f"live tensors {tensors}"
    growth = sum(d.size_diff for d in snapshots[-1].compare_to(snapshots[0], "filename"))
    assert growth < HEAP_SLACK, f"heap grew by {growth} bytes over {REPEATS - WARMUP} calls"
    half = len(peaks) // 2
    assert max(peaks[half:]) <= max(peaks[:half]) + HEAP_SLACK, "peak memory keeps rising"


def test_the_checks_catch_a_leak() -> None:
    """The oracle: an analysis that keeps its logits or leaves a hook is caught."""
    s = setup("cpu", torch.float32, n=4)
    n = s.pair.clean.batch_size
    kept: list[torch.Tensor] = []
    existing = _tensor_ids()
    with _Activations({n, 2 * n}) as seen:
        kept.append(s.model(s.pair.clean.inputs))
    assert tuple(kept[0].shape) in seen.alive(existing)
    before = count_hooks(s.model)
    s.model.blocks[0].hook_resid_pre.add_hook(lambda act, hook: act)
    assert count_hooks(s.model) != before
    s.model.reset_hooks()
