"""Activation datasets: chosen hook sites cached over many examples, with labels.

Features are stacked as [sites, n, d], one site being a (hook name, position)
pair. Collection streams batches under `no_grad` and caches only the requested
hooks (`names_filter`). Small datasets stay in memory; past `max_memory_bytes`
each batch is written to disk as a safetensors shard next to a JSON manifest,
and `ActivationDataset.load` reads them back.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Sequence, Sized
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from jaxtyping import Float
from safetensors import safe_open
from safetensors.torch import save_file
from torch import Tensor

from mesainterp.errors import ConfigError, MesaInterpError
from mesainterp.progress import progress_bar
from mesainterp.tasks.base import Task, TaskBatch

__all__ = [
    "ActivationDataset",
    "ProbeSite",
    "collect_activations",
    "resid_sites",
    "task_batches",
    "validate_hook_names",
]

MANIFEST = "activations.json"
_LAYER = re.compile(r"^blocks\.(\d+)\.")


@dataclass(frozen=True, kw_only=True)
class ProbeSite:
    """A probe location: a hook name and a (non-negative) sequence position."""

    hook: str
    pos: int

    def __post_init__(self) -> None:
        if not isinstance(self.hook, str) or not self.hook:
            raise ConfigError("hook", f"expected a hook name, got {self.hook!r}")
        if not isinstance(self.pos, int) or isinstance(self.pos, bool) or self.pos < 0:
            raise ConfigError("pos", f"expected a non-negative int, got {self.pos!r}")

    @property
    def layer(self) -> int:
        """Block index parsed from the hook name; -1 for hooks before the first block."""
        m = _LAYER.match(self.hook)
        return int(m.group(1)) if m else -1

    def to_dict(self) -> dict[str, Any]:
        return {"hook": self.hook, "pos": self.pos}


def resid_sites(
    n_layers: int, positions: Sequence[int], *, kind: str = "resid_post"
) -> list[ProbeSite]:
    """blocks.L.hook_<kind> for every layer × position (layer-major order)."""
    return [
        ProbeSite(hook=f"blocks.{layer}.hook_{kind}", pos=p)
        for layer in range(n_layers)
        for p in positions
    ]


def validate_hook_names(model: Any, names: Iterable[str]) -> None:
    """Refuse hook names the model does not have, listing the valid ones."""
    valid = set(model.hook_dict)
    bad = sorted(set(names) - valid)
    if bad:
        shown = ", ".join(sorted(valid, key=_hook_sort_key))
        raise ConfigError("sites", f"unknown hook name {bad[0]!r}", shown)


def _hook_sort_key(name: str) -> tuple[int, str]:
    m = _LAYER.match(name)
    return (int(m.group(1)) if m else -1, name)


@dataclass(frozen=True, kw_only=True)
class ActivationDataset:
    """Cached activations and the labels of the examples they came from.

    features: [sites, n, d] (float32 on CPU); labels: name -> [n, ...] tensors.
    """

    sites: tuple[ProbeSite, ...]
    features: Float[Tensor, "sites n d"]
    labels: dict[str, Tensor]
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.features.ndim != 3 or self.features.shape[0] != len(self.sites):
            raise ConfigError(
                "features",
                f"expected [sites={len(self.sites)}, n, d], got {tuple(self.features.shape)}",
            )
        n = self.features.shape[1]
        for name, t in self.labels.items():
            if t.shape[0] != n:
                raise ConfigError(f"labels.{name}", f"has {t.shape[0]} rows, features have {n}")

    @property
    def n(self) -> int:
        return int(self.features.shape[1])

    def label(self, name: str) -> Tensor:
        if name not in self.labels:
            raise ConfigError("target", f"no label {name!r}", ", ".join(sorted(self.labels)))
        return self.labels[name]

    def save(self, directory: str | Path, *, shard_size: int | None = None) -> Path:
        """Write safetensors shards (`shard_size` examples each) and a JSON manifest."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        step = shard_size or max(self.n, 1)
        files = []
        for i, start in enumerate(range(0, self.n, step)):
            name = f"shard_{i:05d}.safetensors"
            _write_shard(
                out / name,
                self.features[:, start : start + step],
                {k: v[start : start + step] for k, v in self.labels.items()},
            )
            files.append(name)
        _write_manifest(out, self.sites, files, self.metadata)
        return out

    @classmethod
    def load(
        cls, directory: str | Path, *, site_indices: Sequence[int] | None = None
    ) -> ActivationDataset:
        """Read a dataset written by `save` or by `collect_activations(out_dir=...)`.

        `site_indices` reads only those sites' rows of each shard (for datasets
        too large to hold whole).
        """
        root = Path(directory)
        manifest = _read_manifest(root)
        all_sites = [ProbeSite(**s) for s in manifest["sites"]]
        idx = list(range(len(all_sites))) if site_indices is None else list(site_indices)
        for i in idx:
            if not 0 <= i < len(all_sites):
                raise ConfigError("site_indices", f"{i} out of range", f"0..{len(all_sites) - 1}")
        feats, labels = [], []
        for name in manifest["shards"]:
            f, lab = _read_shard(root / name, idx if site_indices is not None else None)
            feats.append(f)
            labels.append(lab)
        if not feats:
            raise MesaInterpError(f"{root}: dataset has no shards")
        sites = tuple(all_sites[i] for i in idx)
        return cls(
            sites=sites,
            features=torch.cat(feats, dim=1),
            labels={k: torch.cat([lab[k] for lab in labels]) for k in labels[0]},
            metadata=manifest.get("metadata", {}),
        )


def _write_shard(path: Path, feats: Tensor, labels: dict[str, Tensor]) -> None:
    tensors = {"features": feats.contiguous()}
    tensors |= {f"label.{k}": v.contiguous() for k, v in labels.items()}
    save_file(tensors, str(path))


def _read_shard(
    path: Path, site_indices: list[int] | None = None
) -> tuple[Tensor, dict[str, Tensor]]:
    from mesainterp.safe_read import SAFETENSORS_ERRORS, read_safetensors, safetensors_error

    if site_indices is None:
        data = read_safetensors(path)
        feats = data["features"]
    else:
        data = {}
        try:
            handle_ctx = safe_open(str(path), framework="pt")
        except SAFETENSORS_ERRORS as err:
            raise safetensors_error(path, err) from None
        with handle_ctx as handle:
            for key in handle.keys():  # noqa: SIM118
                if key.startswith("label."):
                    data[key] = handle.get_tensor(key)
            sliced = handle.get_slice("features")
            feats = torch.stack([sliced[i] for i in site_indices])
    labels = {k.removeprefix("label."): v for k, v in data.items() if k.startswith("label.")}
    return feats, labels


def _write_manifest(
    root: Path, sites: Sequence[ProbeSite], shards: list[str], metadata: dict[str, Any]
) -> None:
    doc = {
        "format": "mesainterp.activations",
        "schema_version": 1,
        "sites": [s.to_dict() for s in sites],
        "shards": shards,
        "metadata": metadata,
    }
    (root / MANIFEST).write_text(json.dumps(doc, indent=2, default=str))


def _read_manifest(root: Path) -> dict[str, Any]:
    path = root / MANIFEST
    if not path.is_file():
        raise MesaInterpError(f"{root}: no {MANIFEST} (not an activation dataset)")
    from mesainterp.safe_read import read_json

    doc: dict[str, Any] = read_json(path)
    if not isinstance(doc, dict) or doc.get("format") != "mesainterp.activations":
        raise MesaInterpError(f"{path}: not an activation dataset manifest")
    return doc


@dataclass(frozen=True)
class _TaskBatches:
    """Lazily sampled batches that know how many there are (for progress bars)."""

    task: Task
    n: int
    batch_size: int
    seed: int

    def __len__(self) -> int:
        return -(-self.n // self.batch_size)

    def __iter__(self) -> Iterator[TaskBatch]:
        for i in range(len(self)):
            size = min(self.batch_size, self.n - i * self.batch_size)
            yield self.task.sample(size, seed=self.seed + i)


def task_batches(
    task: Task, n: int, *, batch_size: int = 256, seed: int = 0
) -> Iterable[TaskBatch]:
    """`n` examples from `task` in batches, sampled lazily; batch i uses seed `seed + i`."""
    if n <= 0 or batch_size <= 0:
        raise ConfigError("n", f"n and batch_size must be positive, got {n}, {batch_size}")
    return _TaskBatches(task, n, batch_size, seed)


def _batch_labels(batch: TaskBatch) -> dict[str, Tensor]:
    return {k: v.detach().cpu() for k, v in batch.labels.items() if isinstance(v, Tensor)}


@torch.no_grad()
def collect_activations(
    model: Any,
    batches: Iterable[TaskBatch],
    sites: Sequence[ProbeSite],
    *,
    out_dir: str | Path | None = None,
    max_memory_bytes: int = 1 << 30,
    metadata: dict[str, Any] | None = None,
    progress: bool | None = None,
) -> ActivationDataset:
    """Run `model` over `batches`, caching only the sites' hooks at their positions.

    While the features gathered so far fit in `max_memory_bytes` they are kept in
    memory; past it they are written to `out_dir` as one safetensors shard per
    batch (an error if `out_dir` is None). With `out_dir` given the dataset is
    always saved there too. `progress`: a bar over batches (None: on unless
    MESAINTERP_NO_PROGRESS is set).
    """
    if not sites:
        raise ConfigError("sites", "expected at least one site")
    hooks = sorted({s.hook for s in sites})
    validate_hook_names(model, hooks)
    device = next(iter(model.parameters())).device
    feats: list[Tensor] = []
    labels: list[dict[str, Tensor]] = []
    shards: list[str] = []
    held = 0
    spilled = False
    out = Path(out_dir) if out_dir is not None else None
    total = len(batches) if isinstance(batches, Sized) else None
    for batch in progress_bar(
        batches, desc="activations", total=total, unit="batch", progress=progress
    ):
        for s in sites:
            if s.pos >= batch.seq_len:
                raise ConfigError("pos", f"{s.pos} is past the sequence length {batch.seq_len}")
        _, cache = model.run_with_cache(batch.inputs.to(device), names_filter=hooks)
        per_site = [cache[s.hook][:, s.pos] for s in sites]
        f = torch.stack(per_site).to("cpu", torch.float32)
        lab = _batch_labels(batch)
        del cache
        if not spilled and held + f.numel() * 4 > max_memory_bytes:
            if out is None:
                raise MesaInterpError(
                    f"activations exceed max_memory_bytes={max_memory_bytes}; pass out_dir to spill shards"
                )
            out.mkdir(parents=True, exist_ok=True)
            for prev_f, prev_l in zip(feats, labels, strict=True):
                shards.append(f"shard_{len(shards):05d}.safetensors")
                _write_shard(out / shards[-1], prev_f, prev_l)
            feats, labels, spilled = [], [], True
        if spilled:
            assert out is not None
            shards.append(f"shard_{len(shards):05d}.safetensors")
            _write_shard(out / shards[-1], f, lab)
        else:
            feats.append(f)
            labels.append(lab)
            held += f.numel() * 4
    meta = dict(metadata or {})
    if spilled:
        assert out is not None
        _write_manifest(out, sites, shards, meta)
        return ActivationDataset.load(out)
    if not feats:
        raise ConfigError("batches", "no batches given")
    data = ActivationDataset(
        sites=tuple(sites),
        features=torch.cat(feats, dim=1),
        labels={k: torch.cat([lab[k] for lab in labels]) for k in labels[0]},
        metadata=meta,
    )
    if out is not None:
        data.save(out)
    return data
