"""Damage of old photographs applied to the gray (L) channel: ``--degrade RECIPE`` of train and evaluate.

Old scans carry blur, noise, film grain, salt-and-pepper specks, low resolution, JPEG
artefacts, scratches and dust, fading and printed halftone screens, which clean training
photographs never show. A recipe lists the operations to draw, each with its probability ``p``
and the range its strength is drawn from, after Wan et al. 2020, "Bringing Old Photos Back to
Life" (CVPR), and their data code (``Global/data/Create_Bigfile``/``online_dataset_for_old_photos``:
blur, Gaussian noise, JPEG, downscale-and-back, colour/contrast jitter, scratch textures).

Only the gray values are degraded; the colour (ab) target stays clean, since a colorizer
should give a damaged scan the colours of the undamaged scene. Operations come from
albumentations (``GaussianBlur``, ``GaussNoise``, ``MultiplicativeNoise``, ``SaltAndPepper``,
``Downscale``, ``ImageCompression``, ``RandomBrightnessContrast``); scratches and dust, and
halftone, which it lacks, are drawn here with OpenCV and NumPy. Applied in a fixed order, the
order a print ages and is then scanned: fading, halftone, blur, downscale, grain, noise,
speckle, salt-and-pepper, scratches and dust, JPEG.

Every image is degraded from its own seed (:func:`image_seed` of a run seed and the image's
name in evaluate): the same image gets the same damage in every run and for every model.

Recipes (``--degrade``): the names of :data:`RECIPES` (``old-photo``: every operation, each
with its probability, as a collection of damaged prints; ``scan``: blur, noise, fading and
JPEG only), or a YAML file (any fsspec URL) mapping operation names to their settings, e.g.
``{jpeg: {p: 1, quality: [20, 40]}, scratches: {p: 0.5}}``.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from typing import Any

import albumentations as A
import cv2
import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from archive_colorizer.errors import ConfigError

Range = tuple[float, float]


class _Operation(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    p: float = Field(1.0, ge=0, le=1, description="probability that an image gets this damage")


class Blur(_Operation):
    sigma: Range = Field((0.5, 2.0), description="Gaussian blur sigma in pixels")


class Noise(_Operation):
    std: Range = Field((0.01, 0.06), description="additive Gaussian noise, std as a fraction of 255")


class Grain(_Operation):
    std: Range = Field((0.02, 0.06), description="film grain: Gaussian noise drawn at half resolution, std / 255")


class Speckle(_Operation):
    strength: Range = Field((0.05, 0.2), description="multiplicative noise: each pixel times 1 +- strength")


class SaltPepper(_Operation):
    amount: Range = Field((0.001, 0.01), description="fraction of pixels set to black or white")


class Downscale(_Operation):
    scale: Range = Field((0.35, 0.8), description="downscale factor before scaling back (lost resolution)")


class Jpeg(_Operation):
    quality: tuple[int, int] = Field((30, 80), description="JPEG re-compression quality")


class Fading(_Operation):
    contrast: Range = Field((0.2, 0.5), description="contrast lost, a fraction")
    lift: Range = Field((0.0, 0.15), description="brightness added, a fraction of white (paper showing)")


class Halftone(_Operation):
    cell: Range = Field((3.0, 6.0), description="halftone screen period in pixels, at 45 degrees")


class Scratches(_Operation):
    count: tuple[int, int] = Field((1, 5), description="scratches: thin random strokes")
    dust: tuple[int, int] = Field((5, 40), description="dust: small spots")


OPERATIONS: dict[str, type[_Operation]] = {
    "fading": Fading,
    "halftone": Halftone,
    "blur": Blur,
    "downscale": Downscale,
    "grain": Grain,
    "noise": Noise,
    "speckle": Speckle,
    "salt_pepper": SaltPepper,
    "scratches": Scratches,
    "jpeg": Jpeg,
}
"""Operation names, in the order they are applied."""

RECIPES: dict[str, dict[str, dict[str, Any]]] = {
    "old-photo": {
        "fading": {"p": 0.5},
        "halftone": {"p": 0.1},
        "blur": {"p": 0.5},
        "downscale": {"p": 0.3},
        "grain": {"p": 0.4},
        "noise": {"p": 0.5},
        "speckle": {"p": 0.2},
        "salt_pepper": {"p": 0.2},
        "scratches": {"p": 0.5},
        "jpeg": {"p": 0.7},
    },
    "scan": {"fading": {"p": 0.5}, "blur": {"p": 0.5}, "noise": {"p": 0.5}, "jpeg": {"p": 0.7}},
}
"""Built-in recipes: operation -> settings (unset ranges take the operation's defaults)."""


def image_seed(seed: int, key: str) -> int:
    """A 32-bit seed for one image from a run seed and the image's name (stable across runs and machines)."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{key}".encode()).digest()[:4], "little")


class _ScratchesAndDust(A.ImageOnlyTransform):
    """Thin random strokes (1-2 px, light or dark, slightly curved) and small spots on an 8-bit gray image."""

    def __init__(self, count: tuple[int, int], dust: tuple[int, int], p: float) -> None:
        super().__init__(p=p)
        self.count, self.dust = count, dust

    def get_params(self) -> dict[str, Any]:
        return {"draw_seed": int(self.random_generator.integers(2**32))}

    def apply(self, img: np.ndarray, draw_seed: int = 0, **params: Any) -> np.ndarray:
        rng = np.random.default_rng(draw_seed)
        out = np.ascontiguousarray(img).copy()
        height, width = out.shape[:2]
        for _ in range(int(rng.integers(self.count[0], self.count[1] + 1))):
            start = rng.uniform((0, 0), (width, height))
            angle, length = rng.uniform(0, math.pi), rng.uniform(0.3, 1.0) * max(height, width)
            points = [start + t * length * np.array([math.cos(angle), math.sin(angle)]) for t in np.linspace(0, 1, 4)]
            points = [p + rng.normal(0, 0.01 * length, 2) for p in points]  # a slight curve
            shade = int(rng.uniform(200, 255)) if rng.random() < 0.7 else int(rng.uniform(0, 50))
            polyline = np.round(np.array(points)).astype(np.int32).reshape(-1, 1, 2)
            cv2.polylines(out, [polyline], False, shade, int(rng.integers(1, 3)), cv2.LINE_AA)
        for _ in range(int(rng.integers(self.dust[0], self.dust[1] + 1))):
            centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
            shade = int(rng.uniform(210, 255)) if rng.random() < 0.6 else int(rng.uniform(0, 40))
            cv2.circle(out, centre, int(rng.integers(1, 3)), shade, -1, cv2.LINE_AA)
        return out.reshape(img.shape)

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("count", "dust")


class _Halftone(A.ImageOnlyTransform):
    """An amplitude-modulated dot screen at 45 degrees (newspaper and book prints), lightly blurred by the scan."""

    def __init__(self, cell: Range, p: float) -> None:
        super().__init__(p=p)
        self.cell = cell

    def get_params(self) -> dict[str, Any]:
        return {"period": float(self.random_generator.uniform(*self.cell))}

    def apply(self, img: np.ndarray, period: float = 4.0, **params: Any) -> np.ndarray:
        gray = img.reshape(img.shape[:2]).astype(np.float32) / 255  # (H, W) in [0, 1]
        rows, cols = np.mgrid[0 : gray.shape[0], 0 : gray.shape[1]].astype(np.float32)
        u, v = (cols + rows) / math.sqrt(2), (cols - rows) / math.sqrt(2)
        screen = (np.cos(2 * math.pi * u / period) * np.cos(2 * math.pi * v / period) + 1) / 2  # (H, W) in [0, 1]
        dots = np.where(gray > screen, 255.0, 0.0).astype(np.float32)
        scanned = cv2.GaussianBlur(dots, (0, 0), sigmaX=period / 4)
        return np.clip(np.rint(scanned), 0, 255).astype(np.uint8).reshape(img.shape)

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("cell",)


def _transform(name: str, op: Any) -> A.BasicTransform:
    """The albumentations transform of one operation (our own for scratches and halftone)."""
    p = op.p
    if name == "blur":
        return A.GaussianBlur(blur_limit=0, sigma_limit=op.sigma, p=p)
    if name == "noise":
        return A.GaussNoise(std_range=op.std, per_channel=False, p=p)
    if name == "grain":
        return A.GaussNoise(std_range=op.std, per_channel=False, noise_scale_factor=0.5, p=p)
    if name == "speckle":
        low, high = op.strength
        return A.MultiplicativeNoise(multiplier=(1 - high, 1 + high), elementwise=True, p=p)
    if name == "salt_pepper":
        return A.SaltAndPepper(amount=op.amount, p=p)
    if name == "downscale":
        linear = cv2.INTER_LINEAR
        return A.Downscale(
            scale_range=op.scale, interpolation_pair={"downscale": cv2.INTER_AREA, "upscale": linear}, p=p
        )
    if name == "jpeg":
        return A.ImageCompression(quality_range=op.quality, p=p)
    if name == "fading":
        contrast, lift = op.contrast, op.lift
        return A.RandomBrightnessContrast(
            brightness_limit=lift, contrast_limit=(-contrast[1], -contrast[0]), ensure_safe_range=True, p=p
        )
    if name == "halftone":
        return _Halftone(op.cell, p)
    return _ScratchesAndDust(op.count, op.dust, p)


class Degradation:
    """A recipe ready to apply: ``degradation(gray, seed)`` -> the damaged gray image.

    Attributes:
        name: the recipe's name (a built-in name or the YAML file's URL).
        operations: ``{name: settings}`` in the order applied.
    """

    def __init__(self, operations: Mapping[str, Mapping[str, Any]], name: str = "custom") -> None:
        unknown = sorted(set(operations) - set(OPERATIONS))
        if unknown:
            raise ConfigError(
                f"degrade recipe {name!r}: unknown operation(s) {', '.join(unknown)}; known: {', '.join(OPERATIONS)}"
            )
        try:
            self.operations = {
                op: OPERATIONS[op](**dict(operations[op] or {})) for op in OPERATIONS if op in operations
            }
        except ValidationError as exc:
            raise ConfigError(f"degrade recipe {name!r}: {exc}") from None
        self.name = name
        self._compose = A.Compose([_transform(op, settings) for op, settings in self.operations.items()])

    @classmethod
    def named(cls, recipe: str | None, storage_options: Mapping[str, Any] | None = None) -> Degradation | None:
        """The degradation of ``--degrade``: a built-in name, a YAML file, or ``None`` (off).

        Raises:
            ConfigError: an unknown name that is no readable YAML mapping, or bad settings.
        """
        if recipe is None or recipe.lower() in ("none", "off"):
            return None
        if recipe in RECIPES:
            return cls(RECIPES[recipe], recipe)
        from archive_colorizer.storage import open_url, read_bytes

        try:
            fs, path = open_url(recipe, storage_options)
            loaded = yaml.safe_load(read_bytes(fs, path))
        except (FileNotFoundError, OSError, yaml.YAMLError) as exc:
            raise ConfigError(
                f"--degrade {recipe!r} is neither a built-in recipe ({', '.join(RECIPES)}) nor a readable YAML "
                f"file: {exc}"
            ) from None
        if not isinstance(loaded, Mapping):
            raise ConfigError(f"--degrade {recipe!r}: the YAML file must map operation names to their settings")
        return cls(loaded, recipe)

    def describe(self) -> dict[str, Any]:
        """The recipe as JSON data (name and every operation's settings), for outputs."""
        return {"name": self.name, "operations": {op: s.model_dump(mode="json") for op, s in self.operations.items()}}

    def __call__(self, gray: np.ndarray, seed: int) -> np.ndarray:
        """Degrade one 8-bit gray image.

        Args:
            gray: (H, W) uint8 gray values (an L or luma channel).
            seed: this image's seed (:func:`image_seed`); the same seed gives the same damage.

        Returns:
            (H, W) uint8, the same size.
        """
        if gray.ndim != 2 or gray.dtype != np.uint8:
            raise ValueError(f"expected an (H, W) uint8 gray image, got {gray.shape} {gray.dtype}")
        self._compose.set_random_seed(seed)
        return np.ascontiguousarray(self._compose(image=gray)["image"]).reshape(gray.shape)


def recipe_sheet_png(grays: Mapping[str, np.ndarray], recipe: Degradation, seeds: tuple[int, ...] = (1, 2)) -> bytes:
    """PNG contact sheet of a recipe: one row per gray image, clean | each operation alone (p = 1) | the recipe.

    Args:
        grays: name -> (H, W) uint8 gray image.
        recipe: the recipe whose operations are shown one by one and then together.
        seeds: the recipe's columns, one per seed.
    """
    from archive_colorizer.figures import image_grid_png

    def rgb(gray: np.ndarray) -> np.ndarray:
        return np.repeat(gray[..., None], 3, axis=2)  # (H, W, 3)

    columns: dict[str, list[np.ndarray]] = {"clean": [rgb(g) for g in grays.values()]}
    for op, settings in recipe.operations.items():
        alone = Degradation({op: {**settings.model_dump(), "p": 1.0}}, op)
        columns[op] = [rgb(alone(g, image_seed(seeds[0], name))) for name, g in grays.items()]
    for seed in seeds:
        columns[f"{recipe.name} (seed {seed})"] = [rgb(recipe(g, image_seed(seed, name))) for name, g in grays.items()]
    return image_grid_png(columns, row_labels=list(grays), title=f"--degrade {recipe.name}", cell_inches=1.6)
