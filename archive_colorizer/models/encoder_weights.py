"""Pretrained ResNet-18 weights for the encoder of the ``resnet18_unet`` generator.

The weights come as a torchvision-named ResNet-18 state dict (``conv1.weight``, ``bn1.*``,
``layer1.0.conv1.weight`` ... ``layer4.1.bn2.*``, and usually ``fc.*``) in a ``.safetensors``
file, read from any fsspec URL. The ImageNet weights of torchvision are published in that form
as timm's ``resnet18.tv_in1k`` on the Hugging Face hub, names matching torchvision's:

    huggingface-cli download timm/resnet18.tv_in1k model.safetensors --local-dir weights
    # or: https://huggingface.co/timm/resnet18.tv_in1k/resolve/main/model.safetensors

Nothing is ever unpickled: a ``.pth``/``.pt`` file is refused with the snippet that converts it.

**One channel meets three.** The pretrained ``conv1`` takes RGB (64, 3, 7, 7); the generator's
takes L (64, 1, 7, 7). A gray image replicated into R = G = B = g gives the RGB convolution
``sum_c W_c * g``, which is exactly a one-channel convolution with ``W = sum_c W_c``: the summed
weights answer a gray photo as the pretrained network answered its gray copy in RGB, so every
later layer sees the features it was trained on. (A replicated input channel would do the same
with three times the first layer's work.) The pretrained network saw each channel normalised
with ImageNet's mean (0.485, 0.456, 0.406) and std (0.229, 0.224, 0.225); the generator feeds its
encoder ``(L/100 - 0.449) / 0.226`` (the channel means of both), and CIE ``L/100`` of a neutral
pixel is within 0.04 of its sRGB gray value, so the input scale matches too, up to the small
differences between the channels' statistics (at most 0.036 in mean, 0.003 in std).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import safetensors.torch
import torch

from archive_colorizer.errors import ConfigError, StorageError
from archive_colorizer.models.resnet import ResNet18Encoder
from archive_colorizer.storage import open_url, read_bytes

WEIGHTS_HUB_URL = "https://huggingface.co/timm/resnet18.tv_in1k/resolve/main/model.safetensors"
"""torchvision's ImageNet ResNet-18 (IMAGENET1K_V1) as safetensors, published by timm."""
IGNORED_PREFIXES = ("fc.",)
"""Keys of a torchvision ResNet-18 state dict that the encoder has no use for (the classifier)."""
_PICKLE_SUFFIXES = (".pth", ".pt", ".ckpt", ".pkl", ".pickle", ".bin", ".tar")


def _conversion_hint(url: str) -> str:
    return (
        f"{url!r} is a pickled PyTorch file; archive-colorizer never unpickles weights (unpickling runs code). "
        "Convert your own, trusted file once to safetensors:\n"
        "    python -c \"import torch, safetensors.torch as st; sd = torch.load('resnet18.pth', weights_only=True); "
        "st.save_file({k: v.contiguous() for k, v in sd.items()}, 'resnet18.safetensors')\"\n"
        "and pass the .safetensors file. The same ImageNet weights are published as safetensors: timm's "
        f"resnet18.tv_in1k on the Hugging Face hub ({WEIGHTS_HUB_URL}), names matching torchvision's."
    )


def read_encoder_weights(
    url: str, sha256: str | None = None, storage_options: Mapping[str, Any] | None = None
) -> dict[str, torch.Tensor]:
    """Read a ResNet-18 state dict from a ``.safetensors`` file at any fsspec URL.

    Args:
        url: local path, ``s3://...``, ``https://...`` or any fsspec URL of a safetensors file.
        sha256: hex digest the file must have; ``None``: not checked.
        storage_options: fsspec options for ``url``.

    Returns:
        Tensor name -> tensor (CPU), the names as stored.

    Raises:
        ConfigError: a pickled file (``.pth``, ``.pt``, ... : the message shows how to convert
            it), a missing or unreadable file, a sha256 mismatch, or a file that is not safetensors.
    """
    if url.lower().rstrip("/").endswith(_PICKLE_SUFFIXES):
        raise ConfigError(f"--encoder-weights: {_conversion_hint(url)}")
    fs, path = open_url(url, storage_options)
    try:
        data = read_bytes(fs, path)
    except (FileNotFoundError, StorageError) as exc:
        raise ConfigError(f"--encoder-weights: cannot read {url!r}: {exc}") from exc
    digest = hashlib.sha256(data).hexdigest()
    if sha256 is not None and digest != sha256.lower():
        raise ConfigError(f"--encoder-weights: {url!r} has sha256 {digest}, --encoder-weights-sha256 expects {sha256}")
    if data[:2] == b"PK" or data[:1] == b"\x80":  # a zip (torch.save) or a raw pickle with another suffix
        raise ConfigError(f"--encoder-weights: {_conversion_hint(url)}")
    try:
        return safetensors.torch.load(data)
    except Exception as exc:  # safetensors raises its own SafetensorError
        raise ConfigError(f"--encoder-weights: {url!r} is not a safetensors file: {exc}") from exc


def adapt_first_convolution(weights: dict[str, torch.Tensor], in_channels: int) -> dict[str, torch.Tensor]:
    """Fit the RGB ``conv1.weight`` (64, 3, 7, 7) to ``in_channels`` input channels.

    One channel: the sum over the RGB channels (see the module docstring for why). As many
    channels as the file has: unchanged.

    Raises:
        ConfigError: ``conv1.weight`` is missing, or has another number of channels that is not 3.
    """
    if "conv1.weight" not in weights:
        raise ConfigError("--encoder-weights: the state dict has no conv1.weight; is it a torchvision ResNet-18?")
    conv1 = weights["conv1.weight"]
    if conv1.ndim != 4 or conv1.shape[1] == in_channels:
        return weights
    if in_channels == 1 and conv1.shape[1] == 3:
        return {**weights, "conv1.weight": conv1.sum(dim=1, keepdim=True)}
    raise ConfigError(
        f"--encoder-weights: conv1.weight has {conv1.shape[1]} input channels; the encoder takes {in_channels} "
        "(expected 3, summed to 1 for L)"
    )


def load_encoder_weights(encoder: ResNet18Encoder, weights: Mapping[str, torch.Tensor]) -> list[str]:
    """Copy a torchvision-named ResNet-18 state dict into ``encoder``, strictly.

    ``fc.*`` (the ImageNet classifier) is ignored; every other key must be one of the
    encoder's, with its shape, and every encoder tensor must be in the file (BatchNorm's
    ``num_batches_tracked`` counters excepted: they keep their value when absent).

    Args:
        encoder: the generator's encoder.
        weights: e.g. from :func:`read_encoder_weights`; ``conv1.weight`` may have 3 input
            channels (summed to the encoder's one, :func:`adapt_first_convolution`).

    Returns:
        The names ignored (``fc.weight``, ``fc.bias`` for a torchvision file).

    Raises:
        ConfigError: names missing from the file, names the encoder does not have, or shapes
            that differ; the message lists them (the first ten of each).
    """
    in_channels = encoder.conv1.in_channels
    weights = adapt_first_convolution(dict(weights), in_channels)
    ignored = sorted(k for k in weights if k.startswith(IGNORED_PREFIXES))
    offered = {k: v for k, v in weights.items() if not k.startswith(IGNORED_PREFIXES)}
    expected = encoder.state_dict()
    problems = []
    # BatchNorm's num_batches_tracked is a counter, not a weight; some exports (timm's) leave it out.
    missing = sorted(k for k in set(expected) - set(offered) if not k.endswith("num_batches_tracked"))
    unexpected = sorted(set(offered) - set(expected))
    shapes = [
        f"{k}: file {tuple(offered[k].shape)}, encoder {tuple(expected[k].shape)}"
        for k in sorted(set(offered) & set(expected))
        if offered[k].shape != expected[k].shape
    ]
    for label, names in (("missing", missing), ("not in a ResNet-18", unexpected), ("shape mismatch", shapes)):
        if names:
            more = f" (+{len(names) - 10} more)" if len(names) > 10 else ""
            problems.append(f"{label}: {', '.join(names[:10])}{more}")
    if problems:
        raise ConfigError(
            "--encoder-weights is not a torchvision ResNet-18 state dict: " + "; ".join(problems) + ". "
            f"Expected torchvision's names, e.g. timm's resnet18.tv_in1k ({WEIGHTS_HUB_URL})"
        )
    encoder.load_state_dict({**expected, **{k: v.to(expected[k].dtype) for k, v in offered.items()}}, strict=True)
    return ignored
