"""Training checkpoints without Ray: a restored state continues exactly; export to an artifact."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch
from PIL import Image

from archive_colorizer.color import rgb_to_l_ab
from archive_colorizer.errors import ArtifactError
from archive_colorizer.export.job import export_checkpoint
from archive_colorizer.models import DiscriminatorSpec, GeneratorSpec
from archive_colorizer.models.artifact import load_generator
from archive_colorizer.train.checkpoint import (
    GENERATOR_NAME,
    OPTIMIZER_D_NAME,
    OPTIMIZER_G_NAME,
    _b64,
    _unb64,
    grad_scaler_states,
    load_grad_scaler_states,
    load_optimizer_tensors,
    read_checkpoint,
    rng_state,
    seed_everything,
    set_rng_state,
    write_checkpoint,
    write_rng,
)
from archive_colorizer.train.config import TrainConfig
from archive_colorizer.train.step import build_pix2pix, gan_step

G_SPEC, D_SPEC = GeneratorSpec(ngf=8, num_downs=5), DiscriminatorSpec(ndf=8, n_layers=2)


@pytest.fixture(scope="module")
def batch(photos) -> tuple[torch.Tensor, torch.Tensor]:
    crops = [
        np.asarray(Image.fromarray(photos[n]).resize((32, 32), Image.Resampling.BILINEAR))
        for n in ("coffee", "chelsea")
    ]
    return rgb_to_l_ab(torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float() / 255)


def _model():
    seed_everything(3)
    return build_pix2pix(G_SPEC.build(), D_SPEC.build())


def _write(folder, model, epoch=2, global_step=7):
    config = TrainConfig(
        data="shards",
        run="run",
        image_size=32,
        ngf=8,
        num_downs=5,
        ndf=8,
        n_layers=2,
        storage_options={"key": "AKIA-secret-id", "secret": "very-secret"},
    )
    state = {
        "epoch": epoch,
        "global_step": global_step,
        "run": "run",
        "data": "shards",
        "image_size": 32,
        "generator_spec": G_SPEC.model_dump(),
        "discriminator_spec": D_SPEC.model_dump(),
        "config": config.public_dict(),
        "history": [{"epoch": e, "val_L1_ab": 0.1} for e in range(epoch)],
    }
    write_checkpoint(
        folder,
        generator=model.generator,
        discriminator=model.discriminator,
        optimizer_g=model.optimizer_g,
        optimizer_d=model.optimizer_d,
        state=state,
    )
    write_rng(folder, rank=0)


def test_restored_checkpoint_continues_training_identically(tmp_path, batch):
    """Weights, BatchNorm buffers, both Adam states and the random state all come back."""
    model = _model()
    for _ in range(2):
        gan_step(model, *batch)
    _write(tmp_path, model)
    expected = gan_step(model, *batch)  # dropout draws from the restored random state below
    expected_weights = [p.detach().clone() for p in model.generator.parameters()]

    contents = read_checkpoint(tmp_path)
    restored = build_pix2pix(G_SPEC.build(), D_SPEC.build())
    restored.generator.load_state_dict(contents.generator)
    restored.discriminator.load_state_dict(contents.discriminator)
    groups = contents.state["param_groups"]
    load_optimizer_tensors(restored.optimizer_g, contents.optimizer_g, groups[OPTIMIZER_G_NAME])
    load_optimizer_tensors(restored.optimizer_d, contents.optimizer_d, groups[OPTIMIZER_D_NAME])
    set_rng_state(contents.rng[0])
    again = gan_step(restored, *batch)
    assert again == expected
    for a, b in zip(expected_weights, restored.generator.parameters(), strict=True):
        assert torch.equal(a, b)
    assert (contents.state["epoch"], contents.state["global_step"]) == (2, 7)


def test_checkpoint_holds_no_pickle_and_no_secret(tmp_path):
    _write(tmp_path, _model())
    text = (tmp_path / "state.json").read_text()
    assert "very-secret" not in text and "AKIA-secret-id" not in text
    assert json.loads(text)["config"]["storage_options"] == {"key": "***", "secret": "***"}
    assert sorted(p.suffix for p in tmp_path.rglob("*") if p.is_file()) == [".json", ".json", *[".safetensors"] * 4]


def test_rng_state_round_trip_replays_python_numpy_and_torch():
    state = rng_state()
    first = (random.random(), np.random.rand(), torch.rand(3))
    set_rng_state(json.loads(json.dumps(state)))
    second = (random.random(), np.random.rand(), torch.rand(3))
    assert first[:2] == second[:2] and torch.equal(first[2], second[2])


def test_export_writes_an_artifact_that_predicts_like_the_checkpoint(tmp_path, batch):
    model = _model()
    gan_step(model, *batch)
    _write(tmp_path / "checkpoint_epoch_0002", model)
    metadata = export_checkpoint(str(tmp_path / "checkpoint_epoch_0002"), str(tmp_path / "artifact"))
    artifact = load_generator(str(tmp_path / "artifact"))
    assert metadata["provenance"]["epoch"] == 1 and metadata["provenance"]["data"] == "shards"
    assert artifact.working_size == 32 and artifact.spec == G_SPEC
    model.generator.eval()
    with torch.no_grad():
        assert torch.equal(artifact.generator(batch[0]), model.generator(batch[0]))


def test_export_refuses_a_run_directory_naming_its_checkpoints(tmp_path):
    _write(tmp_path / "checkpoint_epoch_0002", _model())
    with pytest.raises(ArtifactError, match="checkpoint_epoch_0002: pass one of them"):
        export_checkpoint(str(tmp_path), str(tmp_path / "artifact"))


def test_export_refuses_truncated_generator_weights(tmp_path):
    _write(tmp_path, _model())
    weights = tmp_path / GENERATOR_NAME
    weights.write_bytes(weights.read_bytes()[:-100])
    with pytest.raises(ArtifactError, match="truncated"):
        export_checkpoint(str(tmp_path), str(tmp_path / "artifact"))


def test_export_command_line_writes_the_artifact_and_names_a_bad_checkpoint(tmp_path, capsys):
    from archive_colorizer.cli import main

    _write(tmp_path / "checkpoint_epoch_0002", _model())
    assert main(["export", str(tmp_path / "checkpoint_epoch_0002"), str(tmp_path / "artifact")]) == 0
    assert load_generator(str(tmp_path / "artifact")).metadata["provenance"]["epochs_trained"] == 2
    assert main(["export", str(tmp_path / "missing"), str(tmp_path / "other")]) == 1
    assert "missing' is not a training checkpoint" in capsys.readouterr().err


def _index(device) -> int:
    return device.index if isinstance(device, torch.device) else device


class _FakeCuda:
    """torch.cuda as a worker sees it: ``visible`` GPUs, the worker's own one current."""

    def __init__(self, visible: int, current: int = 0):
        self.visible, self.current = visible, current
        self.states = {d: torch.full((16,), d, dtype=torch.uint8) for d in range(visible)}

    def install(self, monkeypatch):
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: self.visible)
        monkeypatch.setattr(torch.cuda, "current_device", lambda: self.current)
        monkeypatch.setattr(torch.cuda, "get_rng_state", lambda device: self.states[_index(device)].clone())
        monkeypatch.setattr(torch.cuda, "set_rng_state", self._set)
        monkeypatch.setattr(torch.cuda, "get_rng_state_all", self._all)
        monkeypatch.setattr(torch.cuda, "set_rng_state_all", self._all)

    def _set(self, state, device):
        device = _index(device)
        if device >= self.visible:
            raise RuntimeError(f"invalid device ordinal {device}")
        self.states[device] = state.clone()

    def _all(self, *args):
        raise AssertionError("every visible GPU's state must not be saved or restored")


def test_rng_keeps_the_workers_own_gpu_state_and_resumes_on_fewer_gpus(monkeypatch):
    saved_on = _FakeCuda(visible=4, current=2)  # a worker of a 4-GPU node whose device is cuda:2
    saved_on.install(monkeypatch)
    state = json.loads(json.dumps(rng_state(torch.device("cuda", 2))))
    assert "torch_cuda" not in state and _unb64(state["torch_cuda_device"]).tolist() == [2] * 16
    resumed_on = _FakeCuda(visible=1)  # the same rank resumed on a 1-GPU node
    resumed_on.install(monkeypatch)
    set_rng_state(state, torch.device("cuda", 0))
    assert resumed_on.states[0].tolist() == [2] * 16
    # A checkpoint of the earlier layout (all 8 visible GPUs' states) resumes on 1 GPU too.
    legacy = dict(state, torch_cuda=[_b64(torch.full((16,), d, dtype=torch.uint8)) for d in range(8)])
    del legacy["torch_cuda_device"]
    set_rng_state(legacy, torch.device("cuda", 0))
    assert resumed_on.states[0].tolist() == [0] * 16
    # A state saved on a CPU worker leaves the GPU's generator alone.
    cpu_state = {key: value for key, value in state.items() if key != "torch_cuda_device"}
    resumed_on.states[0] = torch.full((16,), 7, dtype=torch.uint8)
    set_rng_state(cpu_state, torch.device("cuda", 0))
    assert resumed_on.states[0].tolist() == [7] * 16


def test_a_cpu_worker_on_a_gpu_node_never_touches_cuda_at_a_checkpoint(monkeypatch, tmp_path):
    # CUDA visible (a GPU node) but the worker trains on the CPU: asking torch.cuda for a random
    # state would open a CUDA context on GPU 0 at every checkpoint.
    def no_cuda(*args, **kwargs):
        raise AssertionError("a CPU worker touched CUDA")

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    for name in ("current_device", "get_rng_state", "set_rng_state", "get_rng_state_all", "set_rng_state_all"):
        monkeypatch.setattr(torch.cuda, name, no_cuda)
    cpu = torch.device("cpu")
    write_rng(tmp_path, rank=3, device=cpu)
    state = json.loads((tmp_path / "rng" / "rank_00003.json").read_text())
    assert "torch_cuda_device" not in state
    torch.manual_seed(11)
    expected = torch.rand(4)
    torch.manual_seed(12)
    set_rng_state(dict(state, torch=_b64(torch.manual_seed(11).get_state())), cpu)
    assert torch.equal(torch.rand(4), expected)  # the CPU generator is restored, CUDA untouched


def test_fp16_grad_scaler_state_survives_a_checkpoint(tmp_path, batch):
    """An fp16 run resumes at the loss scale it reached, not at GradScaler's initial 65536."""
    scaled = build_pix2pix(G_SPEC.build(), D_SPEC.build(), grad_scaler=lambda: torch.amp.GradScaler("cpu"))
    for _ in range(2):
        gan_step(scaled, *batch)
    # Overflowed steps halve the scale; two such moments and some growth-tracker progress:
    for scaler, scale in ((scaled.scaler_g, 2048.0), (scaled.scaler_d, 512.0)):
        scaler.update(new_scale=scale)
    saved = grad_scaler_states({"G": scaled.scaler_g, "D": scaled.scaler_d})
    folder = tmp_path / "checkpoint_epoch_0001"
    write_checkpoint(
        folder,
        generator=scaled.generator,
        discriminator=scaled.discriminator,
        optimizer_g=scaled.optimizer_g,
        optimizer_d=scaled.optimizer_d,
        state={"epoch": 1, "global_step": 2, "grad_scalers": saved},
    )
    state = read_checkpoint(folder).state
    resumed = build_pix2pix(G_SPEC.build(), D_SPEC.build(), grad_scaler=lambda: torch.amp.GradScaler("cpu"))
    assert resumed.scaler_g.get_scale() == 65536.0  # a fresh scaler's start: what a resume used to get
    load_grad_scaler_states({"G": resumed.scaler_g, "D": resumed.scaler_d}, state["grad_scalers"])
    assert (resumed.scaler_g.get_scale(), resumed.scaler_d.get_scale()) == (2048.0, 512.0)
    assert resumed.scaler_g.state_dict() == scaled.scaler_g.state_dict()
    # bf16 / fp32 runs have no scalers: nothing saved, nothing to restore.
    assert grad_scaler_states({"G": None, "D": None}) == {}
