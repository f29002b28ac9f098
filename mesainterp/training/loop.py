"""The training loop: online sampling, AdamW, periodic held-out evaluation, exact resume.

Every step draws a fresh batch from `task.sample(batch_size, seed=train_seed(seed,
step))`, so there is no fixed dataset to overfit and the batch stream is a pure
function of (seed, step). With `train_set_size = N` the run instead draws every
batch from one fixed set of N instances (`task.sample(N, seed=train_seed(seed, 0))`),
rows chosen by a generator seeded with `train_seed(seed, step)`, still a pure
function of (seed, step); the accuracy on that set is logged and recorded. Resuming loads weights, AdamW state and the step, and
continues bit for bit as if the run had never stopped.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm
from transformer_lens.model_bridge import TransformerBridge

from mesainterp.errors import CheckpointError
from mesainterp.model.build import build_model
from mesainterp.model.checkpoint import load_checkpoint, save_checkpoint
from mesainterp.progress import progress_enabled
from mesainterp.provenance_stamp import provenance
from mesainterp.tasks.base import Task, TaskBatch
from mesainterp.training.config import TrainConfig
from mesainterp.training.evaluation import (
    EvalResult,
    batch_loss,
    evaluate,
    evaluate_batch,
    held_out_seed,
    select_examples,
    train_seed,
    validate_inputs,
)
from mesainterp.training.state import (
    BEST_DIR,
    CHECKPOINT_DIR,
    EVAL_LOG,
    OPTIMIZER_FILE,
    STATE_FILE,
    load_optimizer_state,
    read_train_state,
    save_optimizer_state,
    write_json_atomic,
)

__all__ = ["TrainResult", "headline_metric", "lr_at", "train", "training_set"]


@dataclass(frozen=True, kw_only=True)
class TrainResult:
    """Where a run stopped and how well its model does on held-out samples."""

    out_dir: Path
    step: int
    fingerprint: str
    eval: EvalResult | None
    wall_time_s: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "out_dir": str(self.out_dir),
            "checkpoint": str(self.out_dir / CHECKPOINT_DIR),
            "step": self.step,
            "fingerprint": self.fingerprint,
            "eval": self.eval.to_dict() if self.eval else None,
            "wall_time_s": self.wall_time_s,
        }


def lr_at(config: TrainConfig, step: int) -> float:
    """Linear warmup, then constant or cosine decay to `min_lr_ratio * lr`."""
    if config.warmup_steps and step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    if config.lr_schedule == "constant":
        return config.lr
    span = max(1, config.steps - config.warmup_steps)
    frac = min(1.0, (step - config.warmup_steps) / span)
    floor = config.min_lr_ratio
    return config.lr * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * frac)))


def headline_metric(metrics: dict[str, float]) -> tuple[str, float]:
    """The score "best" is judged by (higher is better): exact-path accuracy,
    else the negated MSE, else the negated loss."""
    for key in ("exact_path", "exact"):
        if key in metrics:
            return key, metrics[key]
    if "mse" in metrics:
        return "mse", -metrics["mse"]
    return "loss", -metrics["loss"]


def _optimizer(
    model: TransformerBridge, config: TrainConfig
) -> tuple[torch.optim.AdamW, dict[int, str]]:
    names: dict[int, str] = {}
    decay: list[torch.nn.Parameter] = []
    no_decay: list[torch.nn.Parameter] = []
    for name, param in model.named_parameters():
        names[id(param)] = name
        # Decay matrices only; biases, norms and embeddings keep their scale.
        is_matrix = param.ndim >= 2 and "embed" not in name and "pos" not in name
        (decay if is_matrix else no_decay).append(param)
    groups = [
        {"params": decay, "weight_decay": config.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=config.lr, betas=(0.9, 0.98), eps=1e-8), names


def training_set(config: TrainConfig, task: Task) -> TaskBatch | None:
    """The fixed training set of a `train_set_size` run (None for online sampling)."""
    if config.train_set_size is None:
        return None
    return task.sample(config.train_set_size, seed=train_seed(config.seed, 0))


def _draw(config: TrainConfig, fixed: TaskBatch, step: int) -> TaskBatch:
    generator = torch.Generator().manual_seed(train_seed(config.seed, step))
    index = torch.randint(fixed.batch_size, (config.batch_size,), generator=generator)
    return select_examples(fixed, index)


def _stage_task(stages: list[tuple[int, Task]], step: int) -> tuple[int, Task]:
    for index, (until, task) in enumerate(stages):
        if step < until:
            return index, task
    return len(stages) - 1, stages[-1][1]


def train(
    config: TrainConfig,
    out_dir: str | os.PathLike[str],
    *,
    resume: bool = False,
    progress: bool | None = None,
    stop_at: int | None = None,
    command: list[str] | None = None,
) -> TrainResult:
    """Train `config` into `out_dir`; with `resume`, continue the run saved there.

    `stop_at` ends the run early (after that step) with everything saved for a
    resume; `command` is the argv recorded in the checkpoint metadata (`cli.main` passes
    the one the user ran; library code never reads sys.argv).
    """
    out = Path(out_dir)
    stages = config.stage_tasks()
    task = config.build_eval_task()
    fixed = training_set(config, stages[-1][1])
    model = build_model(config.model)
    optimizer, names = _optimizer(model, config)
    step, wall_before = 0, 0.0
    best_score = -math.inf
    if resume:
        step, wall_before, best_score = _restore(out, config, model, optimizer, names)
    elif (out / STATE_FILE).exists():
        raise CheckpointError(
            f"{out}: a run is already saved here; pass resume=True (--resume) or pick a new directory"
        )
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / "train_config.json", config.to_dict())
    end = config.steps if stop_at is None else min(stop_at, config.steps)
    cmd = list(command or [])
    started = time.perf_counter()
    last_eval: EvalResult | None = None
    last_train_eval: EvalResult | None = None
    losses: list[float] = []

    def elapsed() -> float:
        return wall_before + time.perf_counter() - started

    def save(at: int) -> str:
        return _save(
            out,
            config,
            model,
            task,
            optimizer,
            names,
            at,
            cmd,
            (last_eval, last_train_eval),
            elapsed(),
            best_score,
        )

    model.train()
    bar = tqdm(
        total=end,
        initial=step,
        disable=not progress_enabled(progress),
        desc=config.task,
        dynamic_ncols=True,
    )
    try:
        while step < end:
            stage_index, stage_task = _stage_task(stages, step)
            if fixed is None:
                batch = stage_task.sample(config.batch_size, seed=train_seed(config.seed, step))
            else:
                batch = _draw(config, fixed, step)
            if step == 0:
                validate_inputs(model, batch.inputs)
            for group in optimizer.param_groups:
                group["lr"] = lr_at(config, step)
            loss = batch_loss(model(batch.inputs), batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            step += 1
            losses.append(float(loss.detach()))
            bar.update(1)
            if step % config.eval_every == 0 or step == config.steps:
                last_eval = evaluate(model, task, config.eval_n, seed=held_out_seed(config.seed))
                train_metrics: dict[str, float] = {}
                if fixed is not None:
                    last_train_eval = evaluate_batch(
                        model, stages[-1][1], fixed, seed=train_seed(config.seed, 0)
                    )
                    train_metrics = {
                        f"train_set_{k}": v
                        for k, v in last_train_eval.metrics.items()
                        if "_ci_" not in k
                    }
                model.train()
                record = {
                    "step": step,
                    "stage": stage_index,
                    "lr": lr_at(config, step - 1),
                    "train_loss": sum(losses) / len(losses),
                    "elapsed_s": round(elapsed(), 2),
                    **last_eval.metrics,
                    **train_metrics,
                }
                losses.clear()
                with open(out / EVAL_LOG, "a") as handle:
                    handle.write(json.dumps(record, sort_keys=True) + "\n")
                _, score = headline_metric(last_eval.metrics)
                bar.set_postfix(
                    {k: round(v, 4) for k, v in last_eval.metrics.items() if "_ci_" not in k}
                )
                if score > best_score:
                    best_score = score
                    save_checkpoint(
                        model,
                        out / BEST_DIR,
                        config=config.model,
                        task=task.config_dict(),
                        metadata=_metadata(
                            config, model, step, cmd, (last_eval, last_train_eval), elapsed()
                        ),
                    )
            if step % config.checkpoint_every == 0 and step < end:
                save(step)
    except KeyboardInterrupt:
        save(step)
        raise
    finally:
        bar.close()
    digest = save(step)
    model.eval()
    return TrainResult(
        out_dir=out, step=step, fingerprint=digest, eval=last_eval, wall_time_s=elapsed()
    )


def _metadata(
    config: TrainConfig,
    model: TransformerBridge,
    step: int,
    command: list[str],
    evals: tuple[EvalResult | None, EvalResult | None],
    wall_time_s: float,
) -> dict[str, Any]:
    last_eval, train_eval = evals
    stamp = provenance(config=config.to_dict(), seed=config.seed, command=command)
    for key in ("model_fingerprint", "model_name", "config"):
        stamp.pop(key, None)
    return {
        "train_config": config.to_dict(),
        "step": step,
        "training_command": command,
        "held_out": last_eval.to_dict() if last_eval else None,
        # Accuracy on the fixed training set of a `train_set_size` run.
        "train_set": None
        if config.train_set_size is None
        else {
            "size": config.train_set_size,
            "seed": train_seed(config.seed, 0),
            "metrics": train_eval.metrics if train_eval else None,
        },
        "n_params": sum(p.numel() for p in model.parameters()),
        "wall_time_s": round(wall_time_s, 2),
        "provenance": stamp,
    }


def _save(
    out: Path,
    config: TrainConfig,
    model: TransformerBridge,
    task: Task,
    optimizer: torch.optim.Optimizer,
    names: dict[int, str],
    step: int,
    command: list[str],
    evals: tuple[EvalResult | None, EvalResult | None],
    wall_time_s: float,
    best_score: float,
) -> str:
    digest = save_checkpoint(
        model,
        out / CHECKPOINT_DIR,
        config=config.model,
        task=task.config_dict(),
        metadata=_metadata(config, model, step, command, evals, wall_time_s),
    )
    save_optimizer_state(optimizer, names, out / OPTIMIZER_FILE)
    write_json_atomic(
        out / STATE_FILE,
        {
            "step": step,
            "config": config.to_dict(),
            "fingerprint": digest,
            "wall_time_s": wall_time_s,
            "best_score": best_score if math.isfinite(best_score) else None,
            "batch_seed_next": train_seed(config.seed, step),
        },
    )
    return digest


def _restore(
    out: Path,
    config: TrainConfig,
    model: TransformerBridge,
    optimizer: torch.optim.Optimizer,
    names: dict[int, str],
) -> tuple[int, float, float]:
    state = read_train_state(out)
    # Through from_dict, so a run saved before a field existed compares at its default.
    saved = TrainConfig.from_dict(dict(state["config"])).to_dict()
    mine = config.to_dict()
    saved.pop("steps", None)
    mine.pop("steps", None)
    if saved != mine:
        differing = sorted(k for k in set(saved) | set(mine) if saved.get(k) != mine.get(k))
        raise CheckpointError(
            f"{out}: the saved run has a different config ({', '.join(differing)}); "
            "only 'steps' may change on resume"
        )
    checkpoint = load_checkpoint(out / CHECKPOINT_DIR)
    if checkpoint.fingerprint != state["fingerprint"]:
        raise CheckpointError(
            f"{out}: {CHECKPOINT_DIR}/ does not match {STATE_FILE} (the run stopped while saving)"
        )
    model.load_state_dict(checkpoint.model.state_dict(), strict=True)
    load_optimizer_state(optimizer, names, out / OPTIMIZER_FILE)
    step = int(state["step"])
    _truncate_log(out / EVAL_LOG, step)
    best = state.get("best_score")
    return step, float(state.get("wall_time_s", 0.0)), -math.inf if best is None else float(best)


def _truncate_log(path: Path, step: int) -> None:
    """Drop eval records written after the last saved step (they will be redone)."""
    if not path.is_file():
        return
    kept = [
        line for line in path.read_text().splitlines() if line and json.loads(line)["step"] <= step
    ]
    path.write_text("".join(line + "\n" for line in kept))
