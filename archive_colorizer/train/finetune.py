"""Fine-tuning: a training run that starts its generator from an exported artifact (``--init-generator``).

The parent is a generator artifact (``generator.safetensors`` + ``generator.json``, any fsspec
URL), e.g. the ``generator/`` folder of an earlier run or a model someone published. The
driver reads it once (:func:`fine_tune_config`): its ``kind`` and sizes (``ngf``,
``num_downs``) become the run's, its working size the crop size unless ``--image-size`` is
given, and its sha256 is pinned in ``init_generator_sha256``, so every worker loads the very
same weights (:func:`load_parent_generator`) and the exported child records its parent.
An option given on the command line or in the YAML file that contradicts the artifact is an
error naming both; nothing is silently overridden.

Fine-tuning defaults (used when ``--lr`` and ``--epochs`` are not given): a learning rate four
times lower than pix2pix's (:data:`FINE_TUNE_DEFAULTS`) and a few epochs, so the weights move
towards the new collection without forgetting what they knew. The discriminator is not part
of an artifact and starts fresh; ``--pretrain-epochs`` (L1 only) lets it be left out at first.
A resumed run (its run directory holds a checkpoint) continues from the checkpoint, not from
the parent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from archive_colorizer.errors import ConfigError
from archive_colorizer.models.artifact import GeneratorArtifact, load_generator
from archive_colorizer.train.config import TrainConfig
from archive_colorizer.train.optim import generator_spec_of

FINE_TUNE_DEFAULTS: Mapping[str, Any] = {"lr": 5e-5, "epochs": 5}
"""Settings a fine-tuning run takes when they are not given: Adam lr 5e-5 (pix2pix trains from
scratch at 2e-4) and 5 epochs (from scratch: 20)."""


def _artifact_settings(artifact: GeneratorArtifact) -> dict[str, Any]:
    """The ``TrainConfig`` settings an artifact fixes: kind, U-Net sizes, crop size."""
    settings: dict[str, Any] = {"generator": artifact.spec.kind, "image_size": artifact.working_size}
    if artifact.spec.kind == "unet":
        settings.update(ngf=artifact.spec.ngf, num_downs=artifact.spec.num_downs)
    return settings


def fine_tune_config(config: TrainConfig, artifact: GeneratorArtifact) -> TrainConfig:
    """The training config of a run that starts from ``artifact`` (see the module docstring).

    Args:
        config: the config as given; ``config.model_fields_set`` tells the settings given
            explicitly (command line or YAML file) from the defaults.
        artifact: the parent, loaded from ``config.init_generator``.

    Returns:
        A validated config with the artifact's kind and sizes, the fine-tuning defaults for
        settings not given, and ``init_generator_sha256`` set to the parent's sha256.

    Raises:
        ConfigError: an explicit setting contradicts the artifact (``--generator``, ``--ngf``,
            ``--num-downs``; both values named), ``--encoder-weights`` is given too (the parent
            holds the encoder), ``--init-generator-sha256`` does not match the parent, or the
            parent's architecture is one ``train`` cannot build (e.g. instance norm).
    """
    url, given = config.init_generator, config.model_fields_set
    settings = _artifact_settings(artifact)
    clashes = [
        f"--{name.replace('_', '-')} {getattr(config, name)} (the artifact's {name} is {value})"
        for name, value in settings.items()
        if name in given and name != "image_size" and getattr(config, name) != value
    ]
    if clashes:
        raise ConfigError(
            f"--init-generator {url} holds a {artifact.spec.kind} generator, but the options ask for another: "
            f"{'; '.join(clashes)}. Drop those options (fine-tuning takes them from the artifact) or start "
            "from an artifact of that architecture"
        )
    if config.encoder_weights is not None:
        raise ConfigError(
            f"--encoder-weights {config.encoder_weights} and --init-generator {url} both set the encoder's "
            "weights; fine-tuning starts from the artifact's: drop --encoder-weights"
        )
    pinned = config.init_generator_sha256
    if pinned is not None and pinned.lower() != artifact.sha256:
        raise ConfigError(
            f"--init-generator {url} has sha256 {artifact.sha256}, --init-generator-sha256 asks for {pinned}"
        )
    given = given - {"init_generator_sha256"}
    updates = {name: value for name, value in settings.items() if name not in given}
    updates.update({name: value for name, value in FINE_TUNE_DEFAULTS.items() if name not in given})
    updates["init_generator_sha256"] = artifact.sha256
    try:
        # Only what was given plus the updates: the others stay defaults (e.g. cpus_per_worker, sized later).
        tuned = TrainConfig(**{name: getattr(config, name) for name in given}, **updates)
        tuned.check_generator_options()  # e.g. an --image-size the artifact's kind cannot take
    except ValueError as exc:  # pydantic's ValidationError is one too
        raise ConfigError(f"fine-tuning from --init-generator {url}: {exc}") from None
    wanted = generator_spec_of(tuned)
    if wanted != artifact.spec:
        raise ConfigError(
            f"--init-generator {url} holds a generator train cannot rebuild: {artifact.spec.model_dump()} "
            f"(train builds {wanted.model_dump()})"
        )
    return tuned


def read_parent(config: TrainConfig) -> TrainConfig:
    """In the driver: load ``--init-generator`` once (checked against its sha256) and resolve the config.

    Returns ``config`` unchanged without ``--init-generator``.

    Raises:
        ArtifactError: the artifact is missing, corrupt or pickled (names the URL).
        ConfigError: as :func:`fine_tune_config`.
    """
    if config.init_generator is None:
        return config
    artifact = load_generator(config.init_generator, storage_options=config.storage_options)
    tuned = fine_tune_config(config, artifact)
    print(
        f"fine-tuning the {artifact.spec.kind} generator {artifact.sha256[:12]} from {artifact.url} "
        f"(lr {tuned.lr:g}, {tuned.epochs} epochs, image size {tuned.image_size})"
    )
    return tuned


def load_parent_generator(generator: nn.Module, config: TrainConfig) -> str | None:
    """Copy the ``--init-generator`` weights into a freshly built ``generator`` (each worker).

    Args:
        generator: built from ``generator_spec_of(config)`` (unwrapped, on any device).
        config: a config resolved by :func:`fine_tune_config` (``init_generator_sha256`` set).

    Returns:
        The parent's sha256, or ``None`` without ``--init-generator`` (nothing loaded).

    Raises:
        ArtifactError: unreadable or corrupt artifact.
        ConfigError: its sha256 is not the one the driver pinned (the artifact was replaced
            while the run started).
    """
    if config.init_generator is None:
        return None
    artifact = load_generator(config.init_generator, storage_options=config.storage_options)
    if config.init_generator_sha256 is not None and artifact.sha256 != config.init_generator_sha256.lower():
        raise ConfigError(
            f"--init-generator {config.init_generator} now has sha256 {artifact.sha256}, the run started with "
            f"{config.init_generator_sha256}: it was replaced; resubmit to start from the new one"
        )
    generator.load_state_dict(artifact.generator.state_dict(), strict=True)
    return artifact.sha256


def parent_record(config: TrainConfig) -> dict[str, Any] | None:
    """What a checkpoint and the exported ``generator.json`` record of the parent, or ``None``.

    ``{"url": the --init-generator URL, "sha256": its generator.safetensors sha256}``.
    """
    if config.init_generator is None:
        return None
    return {"url": config.init_generator, "sha256": config.init_generator_sha256}
