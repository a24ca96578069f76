"""The generator kinds and their specs: ``unet`` (pix2pix, the default) and ``resnet18_unet``.

A spec is saved as a JSON object with a ``kind`` entry (in ``generator.json`` and in training
checkpoints); one without ``kind``, as written before there was a second kind, is a U-Net.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from archive_colorizer.models.catalog import GENERATOR_KINDS, GeneratorKind
from archive_colorizer.models.generator import GeneratorSpec, UNetGenerator
from archive_colorizer.models.resnet import ResNet18Encoder
from archive_colorizer.models.resnet_unet import ResNetUNetGenerator, ResNetUNetSpec

AnyGeneratorSpec = GeneratorSpec | ResNetUNetSpec
"""The spec of either generator kind: both have ``kind``, ``num_downs`` and ``build()``."""
AnyGenerator = UNetGenerator | ResNetUNetGenerator

_SPECS: dict[str, type[AnyGeneratorSpec]] = {
    spec.model_fields["kind"].default: spec for spec in (GeneratorSpec, ResNetUNetSpec)
}
if set(_SPECS) != set(GENERATOR_KINDS):  # a kind added to the catalog needs its spec here, and the reverse
    raise ImportError(f"generator specs {sorted(_SPECS)} do not match the catalog's kinds {list(GENERATOR_KINDS)}")

__all__ = ["GENERATOR_KINDS", "AnyGenerator", "AnyGeneratorSpec", "GeneratorKind", "encoder_of", "generator_spec"]


def generator_spec(document: Mapping[str, Any], kind: str | None = None) -> AnyGeneratorSpec:
    """The spec a saved JSON object describes.

    Args:
        document: a spec's ``model_dump()`` (with or without ``kind``).
        kind: the kind recorded beside it (``generator.json``'s top-level ``kind``), if any;
            it must agree with the document's own.

    Raises:
        ValueError: an unknown kind, two kinds that disagree, or invalid fields (a pydantic
            ``ValidationError``, itself a ``ValueError``).
    """
    inner = document.get("kind")
    chosen = kind or inner or "unet"
    if inner is not None and kind is not None and inner != kind:
        raise ValueError(f"generator kind {kind!r} does not match the spec's kind {inner!r}")
    if chosen not in _SPECS:
        raise ValueError(f"unknown generator kind {chosen!r}: this tool knows {', '.join(GENERATOR_KINDS)}")
    return _SPECS[chosen](**{**document, "kind": chosen})


def encoder_of(generator: nn.Module) -> ResNet18Encoder | None:
    """The pretrainable encoder of a generator (ResNet-18 of ``resnet18_unet``); ``None`` for the U-Net."""
    return generator.encoder if isinstance(generator, ResNetUNetGenerator) else None
