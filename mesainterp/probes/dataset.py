"""Activation datasets: chosen hook sites cached over many examples, with labels.

Features are stacked as [sites, n, d], one site being a `Site` with a position
(a residual, attention-output or MLP-output vector). Collection streams batches under `no_grad` and caches only the requested
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
from jaxtyping import Float, Shaped
from safetensors import safe_open
from safetensors.torch import save_file
from torch import Tensor

from mesainterp.errors import ConfigError, MesaInterpError, allowed
from mesainterp.model.build import ModelShape
from mesainterp.progress import progress_bar
from mesainterp.shapes import shape_checked
from mesainterp.sites.site import PROBE_KINDS, ProbeSiteKind, Site
from mesainterp.tasks.base import Task, TaskBatch

__all__ = [
    "ActivationDataset",
    "check_probe_sites",
    "collect_activations",
    "probe_sites",
    "task_batches",
    "validate_hook_names",
]

MANIFEST = "activations.json"
# Version 1 named a site by its hook name and position; version 2 stores `Site.to_dict()`.
_SCHEMA_VERSION = 2
_LAYER = re.compile(r"^blocks\.(\d+)\.")


def probe_sites(
    shape: ModelShape, positions: Sequence[int], *, kind: ProbeSiteKind = "resid_post"
) -> list[Site]:
    """One `kind` site per layer × position, layer-major: the usual probe sweep.

    >>> from mesainterp.model.build import ModelShape
    >>> shape = ModelShape(n_layers=2, n_heads=1, d_model=8, d_head=8, n_ctx=8, d_vocab=5,
    ...                    d_vocab_out=5, attn_only=False)
    >>> [s.label() for s in probe_sites(shape, [3])]
    ['L0 resid_post @3', 'L1 resid_post @3']
    """
    if kind not in PROBE_KINDS:
        raise ConfigError("kind", f"got {kind!r} for a probe site", allowed(PROBE_KINDS))
    return [
        Site(kind=kind, layer=layer, pos=pos)
        for layer in range(shape.n_layers)
        for pos in positions
    ]


def check_probe_sites(sites: Sequence[Site]) -> None:
    """Refuse anything but Sites a probe can read: one vector per example at one position."""
    if not sites:
        raise ConfigError("sites", "expected at least one site")
    for i, site in enumerate(sites):
        if not isinstance(site, Site):
            raise ConfigError(f"sites[{i}]", f"expected a Site, got {type(site).__name__}")
        if site.kind not in PROBE_KINDS:
            raise ConfigError(
                f"sites[{i}].kind", f"a probe cannot read {site.label()!r}", allowed(PROBE_KINDS)
            )
        if site.pos is None:
            raise ConfigError(f"sites[{i}].pos", f"a probe site needs a position ({site.label()})")


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

    sites: tuple[Site, ...]
    features: Float[Tensor, "sites n d"]
    labels: dict[str, Tensor]
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_probe_sites(self.sites)
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

    @shape_checked
    def label(self, name: str) -> Shaped[Tensor, "n ..."]:
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
        all_sites = _manifest_sites(manifest)
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
    root: Path, sites: Sequence[Site], shards: list[str], metadata: dict[str, Any]
) -> None:
    doc = {
        "format": "mesainterp.activations",
        "schema_version": _SCHEMA_VERSION,
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


def _manifest_sites(manifest: dict[str, Any]) -> list[Site]:
    """The manifest's sites; version 1 entries ({"hook", "pos"}) are read as Sites."""
    entries = manifest.get("sites")
    if not isinstance(entries, list):
        raise MesaInterpError(f"{MANIFEST}: field 'sites' must be a list")
    out = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise MesaInterpError(f"{MANIFEST}: field 'sites[{i}]' must be an object")
        if "kind" in entry:
            out.append(Site.from_dict(entry, where=f"sites[{i}]"))
        else:
            out.append(Site.from_hook_name(str(entry.get("hook")), pos=entry.get("pos")))
    return out


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


def _position(site: Site, seq_len: int) -> int:
    if site.pos is None or site.pos >= seq_len:
        raise ConfigError("pos", f"{site.pos} is past the sequence length {seq_len}")
    return site.pos


def _batch_labels(batch: TaskBatch) -> dict[str, Tensor]:
    return {k: v.detach().cpu() for k, v in batch.labels.items() if isinstance(v, Tensor)}


@torch.no_grad()
def collect_activations(
    model: Any,
    batches: Iterable[TaskBatch],
    sites: Sequence[Site],
    *,
    out_dir: str | Path | None = None,
    max_memory_bytes: int = 1 << 30,
    metadata: dict[str, Any] | None = None,
    progress: bool | None = None,
) -> ActivationDataset:
    """Run `model` over `batches`, caching only the sites' hooks at their positions.

    `sites`: `Site` values of a probe kind (`PROBE_KINDS`), each with a position.

    While the features gathered so far fit in `max_memory_bytes` they are kept in
    memory; past it they are written to `out_dir` as one safetensors shard per
    batch (an error if `out_dir` is None). With `out_dir` given the dataset is
    always saved there too. `progress`: a bar over batches (None: on unless
    MESAINTERP_NO_PROGRESS is set).

    >>> task = mesainterp.get_task("tree-path", n_nodes=6, max_depth=3)
    >>> model = mesainterp.build_model(mesainterp.ModelConfig(n_layers=1, d_model=16, n_heads=2,
    ...     d_head=8, d_mlp=32, d_vocab=task.d_vocab, n_ctx=task.seq_len, seed=0))
    >>> batches = [task.sample(16, seed=seed) for seed in (0, 1)]
    >>> sites = mesainterp.probe_sites(mesainterp.model_shape(model), [task.seq_len - 1])
    >>> data = mesainterp.collect_activations(model, batches, sites, progress=False)
    >>> data.n, data.features.shape  # sites, examples, d_model
    (32, torch.Size([1, 32, 16]))
    >>> [s.label() for s in data.sites], data.labels["depth"].shape
    (['L0 resid_post @...'], torch.Size([32]))
    """
    check_probe_sites(sites)
    hooks = sorted({s.hook_name for s in sites})
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
        positions = [_position(s, batch.seq_len) for s in sites]
        _, cache = model.run_with_cache(batch.inputs.to(device), names_filter=hooks)
        per_site = [cache[s.hook_name][:, p] for s, p in zip(sites, positions, strict=True)]
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
