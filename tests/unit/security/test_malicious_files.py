"""Loading never executes code: malicious pickles disguised as every file the package reads.

Each payload is a real pickle whose `__reduce__` writes a sentinel file when unpickled
(checked once below, so the test would notice a loader that unpickles). Every loader the
package and the CLI expose must refuse the file with a `MesaInterpError` that names it,
and the sentinel must never appear.
"""

from __future__ import annotations

import io
import json
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from mesainterp.cli.main import main
from mesainterp.discovery import Circuit
from mesainterp.discovery.config import load_config
from mesainterp.errors import MesaInterpError
from mesainterp.model import ModelConfig, build_model, load_checkpoint, save_checkpoint
from mesainterp.patching.results import load_result
from mesainterp.probes.dataset import ActivationDataset
from mesainterp.report.rundir import load_run
from mesainterp.tasks import TreePathTask
from mesainterp.training.config import load_train_config


class _Payload:
    def __init__(self, sentinel: Path) -> None:
        self.sentinel = sentinel

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (exec, (f"open({str(self.sentinel)!r}, 'w').write('executed')",))


def _pickle_bytes(sentinel: Path) -> bytes:
    return pickle.dumps({"weights": _Payload(sentinel)}, protocol=pickle.HIGHEST_PROTOCOL)


def _torch_zip_bytes(sentinel: Path) -> bytes:
    buffer = io.BytesIO()
    torch.save({"state_dict": _Payload(sentinel)}, buffer)
    return buffer.getvalue()


@pytest.fixture
def sentinel(tmp_path: Path) -> Path:
    return tmp_path / "SENTINEL"


@pytest.fixture(scope="module")
def good_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    task = TreePathTask(n_nodes=4, max_depth=2)
    config = ModelConfig(
        n_layers=1, d_model=16, n_heads=2, d_head=8, d_mlp=32, d_vocab=task.d_vocab,
        n_ctx=task.seq_len, seed=1,
    )  # fmt: skip
    path = tmp_path_factory.mktemp("good") / "ckpt"
    save_checkpoint(build_model(config), path, config=config, task=task.config_dict())
    return path


def test_the_payloads_really_execute_when_unpickled(tmp_path: Path) -> None:
    """The oracle: an unsafe loader would trip the sentinel."""
    first, second = tmp_path / "a", tmp_path / "b"
    pickle.loads(_pickle_bytes(first))
    torch.load(io.BytesIO(_torch_zip_bytes(second)), weights_only=False)
    assert first.exists() and second.exists()


PAYLOADS: dict[str, Callable[[Path], bytes]] = {"pickle": _pickle_bytes, "torch": _torch_zip_bytes}


def _refused(call: Callable[[], Any], sentinel: Path, names: str) -> None:
    with pytest.raises(MesaInterpError) as info:
        call()
    assert names in str(info.value), str(info.value)
    assert not sentinel.exists()


def _copy_checkpoint(src: Path, dst: Path) -> Path:
    dst.mkdir(parents=True)
    for f in src.iterdir():
        (dst / f.name).write_bytes(f.read_bytes())
    return dst


@pytest.mark.parametrize("payload", sorted(PAYLOADS))
@pytest.mark.parametrize("disguise", ["model.safetensors", "config.json"])
def test_checkpoint_files(
    tmp_path: Path, sentinel: Path, good_checkpoint: Path, payload: str, disguise: str
) -> None:
    ckpt = _copy_checkpoint(good_checkpoint, tmp_path / "ckpt")
    (ckpt / disguise).write_bytes(PAYLOADS[payload](sentinel))
    _refused(lambda: load_checkpoint(ckpt), sentinel, disguise)


def test_a_pt_file_is_never_read(tmp_path: Path, sentinel: Path, good_checkpoint: Path) -> None:
    ckpt = _copy_checkpoint(good_checkpoint, tmp_path / "ckpt")
    (ckpt / "model.safetensors").unlink()
    (ckpt / "model.pt").write_bytes(_torch_zip_bytes(sentinel))
    _refused(lambda: load_checkpoint(ckpt), sentinel, "model.safetensors")


@pytest.mark.parametrize("command", ["info", "eval", "patch", "probe", "run-dir-eval"])
def test_cli_on_a_poisoned_checkpoint(
    tmp_path: Path, sentinel: Path, good_checkpoint: Path, capsys: Any, command: str
) -> None:
    if command == "run-dir-eval":
        run = tmp_path / "run"
        ckpt = _copy_checkpoint(good_checkpoint, run / "checkpoint")
        target, command = run, "eval"
    else:
        target = ckpt = _copy_checkpoint(good_checkpoint, tmp_path / "ckpt")
    (ckpt / "model.safetensors").write_bytes(_pickle_bytes(sentinel))
    out = tmp_path / "out"
    argv = {
        "info": ["info", str(target)],
        "eval": ["eval", str(target), "--n", "4"],
        "patch": ["patch", str(target), "--sites", "resid", "--n", "4", "--out", str(out)],
        "probe": ["probe", str(target), "--target", "goal", "--out", str(out)],
    }[command]
    assert main(argv) == 2
    assert "model.safetensors" in capsys.readouterr().err
    assert not sentinel.exists() and not out.exists()


def test_zoo_names_are_not_paths(tmp_path: Path, sentinel: Path, good_checkpoint: Path) -> None:
    from mesainterp import zoo

    ckpt = _copy_checkpoint(good_checkpoint, tmp_path / "evil")
    (ckpt / "model.safetensors").write_bytes(_pickle_bytes(sentinel))
    for name in (str(ckpt), "../../../" + str(ckpt)):
        _refused(lambda n=name: zoo.load(n), sentinel, "unknown zoo model")
        _refused(lambda n=name: zoo.load_task(n), sentinel, "unknown zoo model")


@pytest.mark.parametrize("payload", sorted(PAYLOADS))
def test_circuit_json(tmp_path: Path, sentinel: Path, payload: str) -> None:
    path = tmp_path / "circuit.json"
    path.write_bytes(PAYLOADS[payload](sentinel))
    _refused(lambda: Circuit.load(path), sentinel, str(path))


def _run_dir(root: Path, entry: dict[str, Any]) -> Path:
    root.mkdir()
    (root / "run.json").write_text(
        json.dumps({"schema": "mesainterp.run/1", "results": [entry]}), encoding="utf-8"
    )
    return root


@pytest.mark.parametrize("payload", sorted(PAYLOADS))
@pytest.mark.parametrize(
    ("filename", "kind"),
    [
        ("patching.parquet", "patching"),
        ("probes.csv", "probes"),
        ("summary.csv", "table"),
        ("summary.parquet", "table"),
        ("circuit.json", "circuit"),
        ("attention.json", "attention"),
    ],
)
def test_report_on_poisoned_results(
    tmp_path: Path, sentinel: Path, capsys: Any, payload: str, filename: str, kind: str
) -> None:
    run = _run_dir(tmp_path / "run", {"name": "r", "kind": kind, "path": filename})
    (run / filename).write_bytes(PAYLOADS[payload](sentinel))
    assert main(["report", str(run)]) == 2
    assert filename in capsys.readouterr().err
    assert not sentinel.exists() and not (run / "report.html").exists()


@pytest.mark.parametrize("payload", sorted(PAYLOADS))
def test_run_json(tmp_path: Path, sentinel: Path, capsys: Any, payload: str) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_bytes(PAYLOADS[payload](sentinel))
    _refused(lambda: load_run(run), sentinel, "run.json")
    assert main(["report", str(run)]) == 2
    assert "run.json" in capsys.readouterr().err
    assert not sentinel.exists()


@pytest.mark.parametrize("payload", sorted(PAYLOADS))
@pytest.mark.parametrize(
    "filename", ["results.parquet", "per_example.safetensors", "provenance.json"]
)
def test_patch_result_files(tmp_path: Path, sentinel: Path, payload: str, filename: str) -> None:
    from mesainterp.patching.results import PatchResult, build_table
    from mesainterp.sites import Site

    sites = [Site(kind="resid_pre", layer=0, pos=0)]
    zero = torch.zeros(1)
    table = build_table(sites, zero, zero, zero, zero, 3)
    result = PatchResult(
        table=table, sites=sites, patched=torch.zeros(1, 3), clean=torch.ones(3),
        corrupted=torch.zeros(3),
    )  # fmt: skip
    out = result.save(tmp_path / "res")
    assert load_result(out).sites == sites
    (out / filename).write_bytes(PAYLOADS[payload](sentinel))
    _refused(lambda: load_result(out), sentinel, filename)


@pytest.mark.parametrize("payload", sorted(PAYLOADS))
@pytest.mark.parametrize("suffix", [".toml", ".json"])
def test_train_config(
    tmp_path: Path, sentinel: Path, capsys: Any, payload: str, suffix: str
) -> None:
    path = tmp_path / f"train{suffix}"
    path.write_bytes(PAYLOADS[payload](sentinel))
    _refused(lambda: load_train_config(path), sentinel, str(path))
    out = tmp_path / "run"
    assert main(["train", "tree-path", "--config", str(path), "--out", str(out)]) == 2
    assert path.name in capsys.readouterr().err
    assert not sentinel.exists() and not out.exists()


@pytest.mark.parametrize("payload", sorted(PAYLOADS))
def test_train_resume_state(tmp_path: Path, sentinel: Path, capsys: Any, payload: str) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / "train_state.json").write_bytes(PAYLOADS[payload](sentinel))
    (out / "train_config.json").write_bytes(PAYLOADS[payload](sentinel))
    assert main(["train", "tree-path", "--out", str(out), "--resume", "--steps", "2"]) == 2
    err = capsys.readouterr().err
    assert "train_config.json" in err or "train_state.json" in err
    assert not sentinel.exists()


@pytest.mark.parametrize("payload", sorted(PAYLOADS))
def test_search_config(
    tmp_path: Path, sentinel: Path, good_checkpoint: Path, capsys: Any, payload: str
) -> None:
    path = tmp_path / "search.toml"
    path.write_bytes(PAYLOADS[payload](sentinel))
    _refused(lambda: load_config(path), sentinel, str(path))
    out = tmp_path / "out"
    assert main(["search", str(path), "--out", str(out)]) == 2
    assert not sentinel.exists() and not out.exists()
    ckpt = _copy_checkpoint(good_checkpoint, tmp_path / "ckpt")
    (ckpt / "config.json").write_bytes(PAYLOADS[payload](sentinel))
    path.write_text(f'[model]\ncheckpoint = "{ckpt}"\n[search]\ntop_n = 3\n')
    assert main(["search", str(path), "--out", str(out)]) == 2
    assert "config.json" in capsys.readouterr().err
    assert not sentinel.exists() and not out.exists()


@pytest.mark.parametrize("payload", sorted(PAYLOADS))
@pytest.mark.parametrize("filename", ["activations.json", "shard"])
def test_activation_dataset(tmp_path: Path, sentinel: Path, payload: str, filename: str) -> None:
    from mesainterp.probes.dataset import MANIFEST
    from mesainterp.sites import Site

    data = ActivationDataset(
        sites=(Site(kind="resid_post", layer=0, pos=0),),
        features=torch.zeros(1, 4, 8),
        labels={"goal": torch.zeros(4, dtype=torch.long)},
        metadata={},
    )
    root = data.save(tmp_path / "acts")
    manifest = json.loads((root / MANIFEST).read_text())
    victim = root / (MANIFEST if filename == "activations.json" else manifest["shards"][0])
    victim.write_bytes(PAYLOADS[payload](sentinel))
    _refused(lambda: ActivationDataset.load(root), sentinel, victim.name)
    _refused(lambda: ActivationDataset.load(root, site_indices=[0]), sentinel, victim.name)
