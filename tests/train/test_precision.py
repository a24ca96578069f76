"""Choosing the training precision, and the fp16 GradScaler path of the pix2pix steps (on CPU)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from PIL import Image

from archive_colorizer.color import rgb_to_l_ab
from archive_colorizer.errors import ConfigError
from archive_colorizer.images import resize_shorter_side
from archive_colorizer.models import DiscriminatorSpec, GeneratorSpec
from archive_colorizer.train.config import TrainConfig
from archive_colorizer.train.precision import resolve_precision
from archive_colorizer.train.step import build_pix2pix, gan_step

CUDA, CPU = torch.device("cuda", 0), torch.device("cpu")


@pytest.mark.parametrize(
    ("requested", "device", "bf16", "expected"),
    [
        ("auto", CUDA, True, ("bf16", torch.bfloat16, False)),  # A100, H100, L4
        ("auto", CUDA, False, ("fp16", torch.float16, True)),  # T4, V100: fp16 with a GradScaler
        ("auto", CPU, None, ("fp32", None, False)),
        ("fp16", CUDA, True, ("fp16", torch.float16, True)),
        ("fp32", CUDA, True, ("fp32", None, False)),
        ("fp32", CPU, None, ("fp32", None, False)),
    ],
)
def test_precision_is_chosen_from_the_device(requested, device, bf16, expected):
    chosen = resolve_precision(requested, device, bf16_supported=bf16)
    assert (chosen.name, chosen.autocast_dtype, chosen.scale_loss) == expected
    assert isinstance(chosen.grad_scaler(CPU), torch.amp.GradScaler) == expected[2]


@pytest.mark.parametrize(
    ("capability", "gpu", "expected", "inference"),
    [
        ((7, 0), "V100", "fp16", torch.float16),
        ((7, 5), "T4", "fp16", torch.float16),
        ((8, 0), "A100", "bf16", torch.bfloat16),
        ((8, 9), "L4", "bf16", torch.bfloat16),
        ((9, 0), "H100", "bf16", torch.bfloat16),
    ],
)
def test_auto_precision_takes_bf16_only_where_the_gpu_computes_it_natively(
    monkeypatch, capability, gpu, expected, inference
):
    from archive_colorizer.devices import inference_autocast_dtype

    # torch 2.13's is_bf16_supported() says True below 8.0 too (including_emulation=True by
    # default): a choice that asked it would take slow emulated bf16 on a T4 or V100.
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(torch.version, "hip", None)
    chosen = resolve_precision("auto", CUDA)
    assert (chosen.name, chosen.scale_loss) == (expected, expected == "fp16"), gpu
    assert inference_autocast_dtype(CUDA) == inference, gpu  # the predictor actors' forward pass
    assert inference_autocast_dtype(CPU) is None
    if expected == "fp16":
        with pytest.raises(ConfigError, match="--precision bf16: .* natively"):
            resolve_precision("bf16", CUDA)
    # bench/gpu_check.py measures the same precisions: bf16 only where it is native.
    gpu_check = _gpu_check()
    assert gpu_check.precisions(CUDA) == ["fp32", "fp16", *(["bf16"] if expected == "bf16" else [])], gpu
    assert gpu_check.precisions(CPU) == ["fp32"]


def _gpu_check():
    """bench/gpu_check.py as a module (bench/ is not a package)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "bench" / "gpu_check.py"
    spec = importlib.util.spec_from_file_location("gpu_check_under_test", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_impossible_precisions_name_the_option():
    with pytest.raises(ConfigError, match="--precision bf16 needs a CUDA GPU"):
        resolve_precision("bf16", CPU)
    with pytest.raises(ConfigError, match="--precision fp16 needs a CUDA GPU"):
        resolve_precision("fp16", CPU)
    with pytest.raises(ConfigError, match="does not compute bfloat16 natively .*; use auto or fp16"):
        resolve_precision("bf16", CUDA, bf16_supported=False)
    assert TrainConfig(data="d", run="r").precision == "auto"


def _model(scaled: bool):
    torch.manual_seed(0)
    generator = GeneratorSpec(ngf=8, num_downs=5).build()
    discriminator = DiscriminatorSpec(ndf=8, n_layers=2).build()
    scaler = (lambda: torch.amp.GradScaler("cpu", init_scale=2.0**10)) if scaled else None
    return build_pix2pix(generator, discriminator, grad_scaler=scaler)


def test_grad_scaler_step_equals_the_unscaled_step_and_skips_overflow(photos):
    images = [resize_shorter_side(Image.fromarray(photos[n]), 32) for n in ("astronaut", "coffee")]
    rgb = np.stack([np.asarray(image)[:32, :32] for image in images])
    l_norm, ab = rgb_to_l_ab(torch.from_numpy(rgb).permute(0, 3, 1, 2).float() / 255)  # (2, 1, 32, 32), (2, 2, ...)
    plain, scaled = _model(scaled=False), _model(scaled=True)
    for model in (plain, scaled):
        torch.manual_seed(1)  # the same dropout noise
        gan_step(model, l_norm, ab)
    # Scaling the losses by 1024 and unscaling the gradients gives the same Adam update.
    for a, b in zip(plain.generator.parameters(), scaled.generator.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    for a, b in zip(plain.discriminator.parameters(), scaled.discriminator.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    # A step whose scaled gradients overflow float32 is skipped and the scale halves (fp16's safeguard).
    before = copy.deepcopy(scaled.generator.state_dict())
    scaled.scaler_g.update(new_scale=2.0**127)
    torch.manual_seed(1)
    gan_step(scaled, l_norm, ab)
    weights = [k for k in before if "running" not in k and "num_batches" not in k]
    assert all(torch.equal(before[k], scaled.generator.state_dict()[k]) for k in weights)
    assert scaled.scaler_g.get_scale() == 2.0**126


def test_a_slow_start_is_explained_by_the_resources_the_cluster_lacks():
    from archive_colorizer.train.trainer import startup_wait_reason

    gpu_run = TrainConfig(data="d", run="r", workers=4, gpu=True)
    assert startup_wait_reason(gpu_run, {"CPU": 16.0}).startswith(
        "4 training workers need 4 GPUs and the cluster has 0 (GPU nodes still pending"
    )
    cpu_run = TrainConfig(data="d", run="r", workers=2, cpus_per_worker=4)
    assert startup_wait_reason(cpu_run, {"CPU": 4.0}).startswith("2 training workers need 8 CPUs and the cluster has 4")
    assert "workers not ready" in startup_wait_reason(gpu_run, {"CPU": 16.0, "GPU": 4.0})
