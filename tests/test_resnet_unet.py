"""The resnet18_unet generator: torchvision's layout, size, pretrained weights, the artifact's kind."""

from __future__ import annotations

import hashlib
import json

import pytest
import safetensors.torch
import torch
from torch.utils.flop_counter import FlopCounterMode

from archive_colorizer.errors import ConfigError
from archive_colorizer.models import GeneratorSpec, ResNetUNetSpec, UNetGenerator, generator_spec
from archive_colorizer.models.artifact import METADATA_NAME, WEIGHTS_NAME, load_generator, save_generator
from archive_colorizer.models.encoder_weights import load_encoder_weights, read_encoder_weights
from archive_colorizer.models.resnet import ResNet18Encoder
from archive_colorizer.models.resnet_unet import ResNetUNetGenerator

# torchvision.models.resnet18().state_dict(): every name and shape (written out here: no torchvision).
TORCHVISION_RESNET18 = {"conv1.weight": (64, 3, 7, 7)}


def _bn(prefix: str, channels: int) -> dict[str, tuple[int, ...]]:
    return {
        f"{prefix}.{name}": ((channels,) if name != "num_batches_tracked" else ())
        for name in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
    }


TORCHVISION_RESNET18.update(_bn("bn1", 64))
for _layer, (_in, _out) in enumerate(((64, 64), (64, 128), (128, 256), (256, 512)), start=1):
    for _block in (0, 1):
        _prefix, _source = f"layer{_layer}.{_block}", _in if _block == 0 else _out
        TORCHVISION_RESNET18[f"{_prefix}.conv1.weight"] = (_out, _source, 3, 3)
        TORCHVISION_RESNET18.update(_bn(f"{_prefix}.bn1", _out))
        TORCHVISION_RESNET18[f"{_prefix}.conv2.weight"] = (_out, _out, 3, 3)
        TORCHVISION_RESNET18.update(_bn(f"{_prefix}.bn2", _out))
        if _block == 0 and _layer > 1:
            TORCHVISION_RESNET18[f"{_prefix}.downsample.0.weight"] = (_out, _in, 1, 1)
            TORCHVISION_RESNET18.update(_bn(f"{_prefix}.downsample.1", _out))
TORCHVISION_RESNET18.update({"fc.weight": (1000, 512), "fc.bias": (1000,)})


def torchvision_like_weights(seed: int = 0) -> dict[str, torch.Tensor]:
    """Random tensors under torchvision's ResNet-18 names and shapes (what an ImageNet file holds)."""
    generator = torch.Generator().manual_seed(seed)
    weights = {}
    for name, shape in TORCHVISION_RESNET18.items():
        if name.endswith("num_batches_tracked"):
            weights[name] = torch.tensor(12345, dtype=torch.int64)
        elif name.endswith("running_var"):
            weights[name] = torch.rand(shape, generator=generator) + 0.5
        else:
            weights[name] = torch.randn(shape, generator=generator) * 0.05
    return weights


def _flops(spec, side: int) -> int:
    """FLOPs of one (1, 1, side, side) forward pass (on the meta device: counted, not computed)."""
    with torch.device("meta"):
        model = spec.build().eval()
        counter = FlopCounterMode(display=False)
        with counter, torch.no_grad():
            model(torch.zeros(1, 1, side, side))
    return counter.get_total_flops()


def test_encoder_has_torchvisions_names_and_shapes_less_the_classifier():
    state = ResNet18Encoder(in_channels=3).state_dict()
    expected = {k: v for k, v in TORCHVISION_RESNET18.items() if not k.startswith("fc.")}
    assert {k: tuple(v.shape) for k, v in state.items()} == expected
    # torchvision's resnet18 has 11,689,512 parameters, 513,000 of them in fc.
    assert sum(p.numel() for p in ResNet18Encoder(3).parameters()) == 11_689_512 - 513_000


def test_default_generator_size_and_flops_at_256_and_128():
    generator = ResNetUNetSpec().build()
    assert sum(p.numel() for p in generator.parameters()) == 14_321_970
    assert sum(p.numel() for p in generator.encoder.parameters()) == 11_170_240
    assert _flops(ResNetUNetSpec(), 256) == 10_594_811_904
    assert _flops(ResNetUNetSpec(), 128) == 2_648_702_976
    # The pix2pix U-Nets beside it, counted the same way: unet_256 and the demo's.
    assert _flops(GeneratorSpec(), 256) == 11_962_155_008
    assert _flops(GeneratorSpec(ngf=32, num_downs=6), 128) == 742_391_808


def test_output_has_the_unet_contract():
    torch.manual_seed(0)
    generator = ResNetUNetSpec().build().eval()
    l_norm = torch.rand(2, 1, 64, 96) * 2 - 1
    with torch.no_grad():
        ab = generator(l_norm)
    assert ab.shape == (2, 2, 64, 96) and ab.dtype == torch.float32
    assert ab.abs().max() < 1  # tanh
    with pytest.raises(ValueError, match="divisible by 32"):
        generator(torch.zeros(1, 1, 48, 64))


def test_spec_round_trips_through_json_with_its_kind():
    spec = ResNetUNetSpec(decoder_channels=(32, 16, 16, 8, 8))
    document = json.loads(json.dumps(spec.model_dump()))
    assert document["kind"] == "resnet18_unet"
    assert generator_spec(document) == spec and generator_spec(document).num_downs == 5
    assert generator_spec({"ngf": 8, "num_downs": 5}) == GeneratorSpec(ngf=8, num_downs=5)
    with pytest.raises(ValueError, match="does not match"):
        generator_spec(document, kind="unet")
    with pytest.raises(ValueError, match="unknown generator kind 'vit'"):
        generator_spec({}, kind="vit")


# --- pretrained weights ------------------------------------------------------------------


@pytest.fixture
def weights_file(tmp_path):
    weights = torchvision_like_weights()
    path = tmp_path / "resnet18.safetensors"
    safetensors.torch.save_file(weights, str(path))
    return path, weights


def test_pretrained_weights_load_into_the_encoder_with_conv1_summed(weights_file):
    path, weights = weights_file
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    generator = ResNetUNetSpec().build()
    ignored = load_encoder_weights(generator.encoder, read_encoder_weights(str(path), sha256=digest))
    assert ignored == ["fc.bias", "fc.weight"]
    state = generator.encoder.state_dict()
    assert torch.equal(state["conv1.weight"], weights["conv1.weight"].sum(dim=1, keepdim=True))
    for name, tensor in weights.items():
        if name != "conv1.weight" and not name.startswith("fc."):
            assert torch.equal(state[name], tensor), name


def test_summed_conv1_answers_gray_as_the_rgb_network_answers_its_rgb_copy(weights_file):
    _, weights = weights_file
    rgb = ResNet18Encoder(in_channels=3).eval()
    rgb.load_state_dict({k: v for k, v in weights.items() if not k.startswith("fc.")})
    gray = ResNet18Encoder(in_channels=1).eval()
    load_encoder_weights(gray, weights)
    image = torch.rand(1, 1, 64, 64, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        for ours, theirs in zip(gray(image), rgb(image.expand(-1, 3, -1, -1)), strict=True):
            torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-4)


def test_weights_without_batch_counters_load_too(tmp_path):
    weights = {k: v for k, v in torchvision_like_weights().items() if not k.endswith("num_batches_tracked")}
    encoder = ResNet18Encoder(1)
    load_encoder_weights(encoder, weights)
    assert torch.equal(encoder.layer4[1].bn2.running_var, weights["layer4.1.bn2.running_var"])


def test_missing_unexpected_and_misshapen_keys_are_named(weights_file):
    _, weights = weights_file
    broken = {k: v for k, v in weights.items() if not k.startswith("layer3.1.")}
    broken["head.weight"] = torch.zeros(3)
    broken["layer2.0.conv1.weight"] = torch.zeros(128, 64, 5, 5)
    with pytest.raises(ConfigError) as info:
        load_encoder_weights(ResNet18Encoder(1), broken)
    message = str(info.value)
    assert "missing: layer3.1.bn1.bias" in message and "head.weight" in message
    assert "layer2.0.conv1.weight: file (128, 64, 5, 5), encoder (128, 64, 3, 3)" in message
    assert "resnet18.tv_in1k" in message


def test_a_timm_style_file_with_prefixed_names_is_refused():
    weights = {f"model.{k}": v for k, v in torchvision_like_weights().items()}
    with pytest.raises(ConfigError, match="no conv1.weight"):
        load_encoder_weights(ResNet18Encoder(1), weights)


def test_pickled_weights_are_refused_with_the_conversion_snippet(tmp_path, weights_file):
    pth = tmp_path / "resnet18-f37072fd.pth"
    torch.save(weights_file[1], pth)
    for url in (str(pth), str(tmp_path / "weights.pt")):
        with pytest.raises(ConfigError) as info:
            read_encoder_weights(url)
        message = str(info.value)
        assert "never unpickles" in message and "torch.load(" in message and "st.save_file(" in message
        assert "https://huggingface.co/timm/resnet18.tv_in1k/resolve/main/model.safetensors" in message
    renamed = tmp_path / "looks-fine.safetensors"
    renamed.write_bytes(pth.read_bytes())  # a torch.save zip under a safetensors name
    with pytest.raises(ConfigError, match="never unpickles"):
        read_encoder_weights(str(renamed))


def test_sha256_mismatch_and_missing_file_are_refused(weights_file, tmp_path):
    path, _ = weights_file
    with pytest.raises(ConfigError, match="--encoder-weights-sha256 expects " + "0" * 64):
        read_encoder_weights(str(path), sha256="0" * 64)
    with pytest.raises(ConfigError, match="cannot read"):
        read_encoder_weights(str(tmp_path / "absent.safetensors"))
    (tmp_path / "junk.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}      ")
    with pytest.raises(ConfigError, match="not a safetensors file"):
        read_encoder_weights(str(tmp_path / "junk.safetensors"))


def test_weights_from_an_fsspec_url(weights_file):
    import fsspec

    path, weights = weights_file
    fsspec.filesystem("memory").pipe_file("/weights/resnet18.safetensors", path.read_bytes())
    loaded = read_encoder_weights("memory://weights/resnet18.safetensors")
    assert torch.equal(loaded["layer4.1.conv2.weight"], weights["layer4.1.conv2.weight"])


# --- artifact kind ---------------------------------------------------------------------


def test_artifact_records_and_restores_the_kind(tmp_path):
    torch.manual_seed(2)
    spec = ResNetUNetSpec(decoder_channels=(32, 16, 16, 8, 8))
    generator = spec.build().eval()
    metadata = save_generator(generator, str(tmp_path / "gen"), spec=spec, working_size=64)
    assert metadata["kind"] == "resnet18_unet" and metadata["spec"]["kind"] == "resnet18_unet"
    loaded = load_generator(str(tmp_path / "gen"))
    assert isinstance(loaded.generator, ResNetUNetGenerator) and loaded.spec == spec
    l_norm = torch.rand(1, 1, 64, 64) * 2 - 1
    with torch.no_grad():
        assert torch.equal(loaded.generator(l_norm), generator(l_norm))


def test_an_artifact_written_before_the_kind_field_loads_as_the_unet(tmp_path):
    """generator.json as this tool wrote it before: no top-level kind, no kind in the spec."""
    spec = GeneratorSpec(ngf=8, num_downs=5)
    torch.manual_seed(4)
    generator = spec.build().eval()
    folder = tmp_path / "old"
    folder.mkdir()
    state = {k: v.contiguous() for k, v in generator.state_dict().items()}
    weights = safetensors.torch.save(state, metadata={"format": "archive-colorizer/generator"})
    (folder / WEIGHTS_NAME).write_bytes(weights)
    old_spec = {"in_channels": 1, "out_channels": 2, "num_downs": 5, "ngf": 8, "norm": "batch", "dropout": 0.5}
    (folder / METADATA_NAME).write_text(
        json.dumps(
            {
                "format": "archive-colorizer/generator",
                "format_version": 1,
                "architecture": "pix2pix-unet",
                "spec": old_spec,
                "working_size": 32,
                "weights_file": WEIGHTS_NAME,
                "weights_bytes": len(weights),
                "sha256": hashlib.sha256(weights).hexdigest(),
                "provenance": {},
            }
        )
    )
    loaded = load_generator(str(folder))
    assert isinstance(loaded.generator, UNetGenerator) and loaded.spec == spec and loaded.spec.kind == "unet"
    l_norm = torch.rand(1, 1, 32, 32) * 2 - 1
    with torch.no_grad():
        assert torch.equal(loaded.generator(l_norm), generator(l_norm))
