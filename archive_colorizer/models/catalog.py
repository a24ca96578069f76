"""The generator kinds and the image sides they take, written once and without torch.

The command line reads :data:`GeneratorKind` for ``train --generator`` (so ``--help`` imports no
torch); :mod:`archive_colorizer.models.kinds` maps each kind to its spec class and checks that
it covers exactly these; the artifact records :data:`ARCHITECTURES`. Every job that sizes a
generator's input (train's ``image_size``, colorize's, plan's and evaluate's ``model_size``,
an artifact's ``working_size``) checks it with :func:`check_side`.
"""

from __future__ import annotations

from typing import Literal, get_args

GeneratorKind = Literal["unet", "resnet18_unet"]
"""``unet``: pix2pix ``unet_256`` (Isola et al. 2017); ``resnet18_unet``: ResNet-18 encoder + U-Net decoder."""
GENERATOR_KINDS: tuple[str, ...] = get_args(GeneratorKind)
ARCHITECTURES: dict[str, str] = {"unet": "pix2pix-unet", "resnet18_unet": "resnet18-unet (fastai colorization recipe)"}
"""The ``architecture`` line of each kind in ``generator.json``."""
RESNET18_UNET_NUM_DOWNS = 5
"""The ResNet-18 encoder halves the side five times: ``resnet18_unet`` takes sides divisible by 32."""


def num_downs_of(kind: str, num_downs: int) -> int:
    """Downsamplings of a generator of ``kind``: ``num_downs`` for a U-Net, 5 for ``resnet18_unet``."""
    return RESNET18_UNET_NUM_DOWNS if kind == "resnet18_unet" else num_downs


def check_side(side: int, num_downs: int, kind: str, what: str = "model_size", where: str = "") -> None:
    """Check that a generator of ``kind`` with ``num_downs`` downsamplings takes square images of ``side`` pixels.

    Args:
        side: the image side in pixels.
        num_downs: the generator's downsamplings (see :func:`num_downs_of`).
        kind: the generator kind, named in the message.
        what: the setting named in the message (``image_size``, ``model_size``, ``working_size``).
        where: appended to the first clause, e.g. `` of the generator at 's3://models/v3'``.

    Raises:
        ValueError: ``side`` is not divisible by ``2**num_downs``; the message gives the nearest
            sides that are.
    """
    multiple = 2**num_downs
    if side % multiple == 0:
        return
    below, above = side // multiple * multiple, (side // multiple + 1) * multiple
    nearest = f"{below} or {above}" if below else str(above)
    raise ValueError(
        f"{what} {side} must be divisible by 2**num_downs = {multiple}{where}; sides divisible by {multiple} for "
        f"generator {kind} near it: {nearest}"
    )
