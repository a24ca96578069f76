"""The per-worker training loop that Ray Train runs on every rank.

Each rank builds the generator and discriminator from the same seed, restores the latest
checkpoint if Ray Train hands one over (resubmitted run, or a restart after a worker failure),
wraps both networks for DDP separately, and then, per epoch:

1. trains on its shard of the training split (``get_dataset_shard("train")``), the D step then
   the G step per batch (:mod:`archive_colorizer.train.step`), or L1 only while pretraining;
2. rank 0 evaluates the validation split (not sharded, no jitter) and keeps a few samples;
3. sums of losses, counts and timings are all-reduced, so the epoch's metrics cover all ranks;
4. every rank calls ``ray.train.report`` (rank 0 with the full checkpoint, every rank with
   its random state), and rank 0 rewrites ``metrics.jsonl``, ``loss_curve.png`` and writes
   ``samples/epoch_NNNN.png`` in the run directory.

BatchNorm under DDP: the discriminator runs two forwards (real, fake) before one backward, so
DDP must not overwrite BatchNorm buffers in place at every forward (``broadcast_buffers=False``;
each rank keeps its own running statistics, rank 0's are saved). SyncBatchNorm is not used: it
needs CUDA, and the tests train on CPU with gloo.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from archive_colorizer import gates
from archive_colorizer.devices import use_device_settings
from archive_colorizer.errors import JobError
from archive_colorizer.models import DiscriminatorSpec
from archive_colorizer.stopping import Heartbeat
from archive_colorizer.storage import join, open_url, retried_requests, write_bytes
from archive_colorizer.train.checkpoint import (
    OPTIMIZER_D_NAME,
    OPTIMIZER_G_NAME,
    CheckpointContents,
    checkpoint_dir_name,
    grad_scaler_states,
    load_grad_scaler_states,
    load_optimizer_tensors,
    read_checkpoint,
    seed_everything,
    set_rng_state,
    write_checkpoint,
    write_rng,
)
from archive_colorizer.train.config import TrainConfig
from archive_colorizer.train.data import lab_from_batch
from archive_colorizer.train.finetune import load_parent_generator, parent_record
from archive_colorizer.train.metrics import TRAIN_LOSSES, VAL_METRICS, Accumulator, epoch_row, validation_sums
from archive_colorizer.train.optim import (
    encoder_frozen,
    generator_spec_of,
    load_pretrained_encoder,
    set_generator_lr,
    use_encoder_recipe,
)
from archive_colorizer.train.plots import loss_curve_png, sample_grid_png
from archive_colorizer.train.precision import resolve_precision
from archive_colorizer.train.step import Pix2Pix, build_pix2pix, gan_step, pretrain_step, unwrap

logger = logging.getLogger(__name__)

METRICS_NAME = "metrics.jsonl"
LOSS_CURVE_NAME = "loss_curve.png"
SAMPLES_FOLDER = "samples"
Samples = tuple[torch.Tensor, torch.Tensor, torch.Tensor]
"""Validation samples kept for the sample grid: L (N, 1, S, S), predicted ab and real ab (N, 2, S, S)."""
DDP_KWARGS = {"broadcast_buffers": False}
"""Passed to ``DistributedDataParallel`` by ``ray.train.torch.prepare_model``."""


def train_loop_per_worker(loop_config: dict[str, Any]) -> None:
    """Ray Train entry point of each rank.

    Args:
        loop_config: ``{"config": TrainConfig.model_dump() without storage_options,
            "storage_options": ObjectRef of them, "staging_dir": str | None}``;
            ``staging_dir`` is set only in local mode (``workers=0``), where Ray Train does
            not upload checkpoints and the driver exports from the last one left there.
    """
    import ray

    _show_progress_logs()
    config = TrainConfig(**loop_config["config"], storage_options=ray.get(loop_config["storage_options"]))
    threads = torch.get_num_threads()
    if not config.gpu:
        # As many threads as CPUs reserved: more only contend with the decode tasks (and, in
        # local mode, with the caller's process, whose setting is restored below).
        torch.set_num_threads(max(1, int(config.cpus_per_worker)))
    try:
        worker = WorkerLoop(config, loop_config.get("staging_dir"), loop_config.get("train_rows"))
        worker.heartbeat = Heartbeat(loop_config.get("heartbeat"))  # progress the driver's stall watchdog sees
        worker.run()
    finally:
        torch.set_num_threads(threads)


def _show_progress_logs() -> None:
    package = logging.getLogger("archive_colorizer")
    if not package.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s: %(message)s"))
        package.addHandler(handler)
        package.setLevel(logging.INFO)
        package.propagate = False  # Ray forwards the root logger too: print each line once


def _device(gpu: bool) -> torch.device:
    if not gpu:
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise JobError("--gpu is set but this training worker sees no CUDA device")
    import ray.train.torch

    return ray.train.torch.get_device()


class WorkerLoop:
    """State of one rank: networks, optimisers, counters and the metrics history."""

    def __init__(self, config: TrainConfig, staging_dir: str | None = None, train_rows: int | None = None) -> None:
        import ray.train

        context = ray.train.get_context()
        self._retries_mark = retried_requests()
        self.config = config
        self.staging_dir = staging_dir
        self.rank, self.world_size = context.get_world_rank(), context.get_world_size()
        # Steps per epoch when the train shard streams every epoch one after another (None: the
        # shard is one epoch, read to its end each time).
        self.steps_per_epoch = (
            None if train_rows is None else train_rows // max(1, self.world_size) // config.batch_size
        )
        self.device = _device(config.gpu)
        self.pin_memory = use_device_settings(self.device)
        self.generator_spec = generator_spec_of(config)
        self.discriminator_spec = DiscriminatorSpec(ndf=config.ndf, n_layers=config.n_layers)
        self.epochs_done, self.global_step = 0, 0
        self.history: list[dict[str, Any]] = []
        self._last_staged: Path | None = None
        self.heartbeat = Heartbeat(None)  # train_loop_per_worker sets the driver's key
        seed_everything(config.seed)  # the same initial weights on every rank
        generator, discriminator = self.generator_spec.build(), self.discriminator_spec.build()
        restored = self._restore_networks(generator, discriminator)
        if restored is None:  # a new run: the parent's weights (fine-tuning) or a pretrained encoder, if any
            if load_parent_generator(generator, config) is not None and self.rank == 0:
                logger.info("generator starts from %s (sha256 %s)", config.init_generator, config.init_generator_sha256)
            load_pretrained_encoder(generator, config)
        self.model = self._prepare(generator, discriminator)
        if restored is not None:
            self._restore_optimizers(restored)
        else:
            seed_everything(config.seed + 1 + self.rank)  # distinct dropout noise per rank

    # --- setup -------------------------------------------------------------------------

    def _restore_networks(
        self, generator: torch.nn.Module, discriminator: torch.nn.Module
    ) -> CheckpointContents | None:
        import ray.train

        checkpoint = ray.train.get_checkpoint()
        if checkpoint is None:
            return None
        with checkpoint.as_directory() as folder:
            contents = read_checkpoint(Path(folder))
        generator.load_state_dict(contents.generator)
        discriminator.load_state_dict(contents.discriminator)
        self.epochs_done = int(contents.state["epoch"])
        self.global_step = int(contents.state["global_step"])
        self.history = list(contents.state["history"])[: self.epochs_done]
        if self.rank == 0:
            logger.info(
                "resuming after epoch %d (step %d) from %s", self.epochs_done - 1, self.global_step, checkpoint.path
            )
        return contents

    def _restore_optimizers(self, contents: CheckpointContents) -> None:
        groups = contents.state["param_groups"]
        load_optimizer_tensors(self.model.optimizer_g, contents.optimizer_g, groups[OPTIMIZER_G_NAME])
        load_optimizer_tensors(self.model.optimizer_d, contents.optimizer_d, groups[OPTIMIZER_D_NAME])
        for optimizer in (self.model.optimizer_g, self.model.optimizer_d):
            for group in optimizer.param_groups:
                group["lr"] = self.config.lr * group.get("lr_scale", 1.0)  # a resubmitted command may change it
        # fp16: the loss scale reached, not 65536 again (checkpoints before this have none).
        load_grad_scaler_states(
            {"G": self.model.scaler_g, "D": self.model.scaler_d}, contents.state.get("grad_scalers", {})
        )
        if self.rank in contents.rng:
            set_rng_state(contents.rng[self.rank], self.device)
        else:  # more ranks than when the checkpoint was written
            seed_everything(self.config.seed + 1 + self.rank + 1000 * self.epochs_done)
        self._write_outputs(samples=None)  # drop rows of epochs that will be redone

    def _prepare(self, generator: torch.nn.Module, discriminator: torch.nn.Module) -> Pix2Pix:
        import ray.train.torch

        wrapped = [
            ray.train.torch.prepare_model(network, move_to_device=self.device, parallel_strategy_kwargs=DDP_KWARGS)
            for network in (generator, discriminator)
        ]
        precision = resolve_precision(self.config.precision, self.device)
        logger.info(
            "rank %d on %s trains in %s (--precision %s)", self.rank, self.device, precision.name, self.config.precision
        )
        model = build_pix2pix(
            *wrapped,
            lr=self.config.lr,
            gan_mode=self.config.gan_mode,
            lambda_l1=self.config.lambda_l1,
            autocast_dtype=precision.autocast_dtype,
            grad_scaler=lambda: precision.grad_scaler(self.device),
        )
        use_encoder_recipe(model, self.config)  # resnet18_unet: encoder and decoder param groups
        return model

    # --- epochs --------------------------------------------------------------------------

    def run(self) -> None:
        import ray.train

        train_shard = ray.train.get_dataset_shard("train")
        val_shard = ray.train.get_dataset_shard("val")
        # With steps_per_epoch the shard holds every epoch: one iterator serves the run.
        stream = None if self.steps_per_epoch is None else iter(self._train_batches(train_shard))
        while self.epochs_done < self.config.epochs:
            epoch = self.epochs_done
            gates.hold("train.epoch", str(epoch))  # tests: a certain "mid-run" (after the last checkpoint)
            phase = "pretrain" if epoch < self.config.pretrain_epochs else "gan"
            set_generator_lr(
                self.model.optimizer_g,
                self.config.lr,
                encoder_lr_scale=self.config.encoder_lr_scale,
                frozen=encoder_frozen(self.config, epoch),
            )
            batches = stream if stream is not None else iter(self._train_batches(train_shard))
            train = self._reduce(self.train_epoch(batches, phase))
            val, samples = self.validate(val_shard)
            val = self._reduce(val)
            self.epochs_done += 1
            row = epoch_row(
                epoch,
                self.global_step,
                phase,
                train,
                val,
                self.world_size,
                extra={
                    "lr": self.config.lr,
                    "generator_param_sha256": self._weight_digests(),
                    "storage_retries": self._storage_retries(),
                },
            )
            self.history.append(row)
            self._report(row, checkpoint=self._checkpoint_due())
            self._write_outputs(samples)
            if self.rank == 0:
                shown = ("global_step", "loss_G_L1", "val_L1_ab", "val_PSNR", "val_PSNR_gray", "images_per_sec")
                logger.info("epoch %d: %s", epoch, {k: row[k] for k in shown})

    def _checkpoint_due(self) -> bool:
        return self.epochs_done % self.config.checkpoint_every == 0 or self.epochs_done == self.config.epochs

    def _train_batches(self, shard):
        # uint8 RGB crops cross to the device (a quarter of float32 L and ab), Lab is computed there.
        batches = shard.iter_torch_batches(
            batch_size=self.config.batch_size,
            device=self.device,
            pin_memory=self.pin_memory,
            drop_last=True,
            local_shuffle_buffer_size=self.config.shuffle_buffer or None,
        )
        return (dict(zip(("l", "ab"), lab_from_batch(batch), strict=True)) for batch in batches)

    def train_epoch(self, batches: Iterator[dict[str, torch.Tensor]], phase: str) -> Accumulator:
        """Train one epoch on this rank's batches; returns this rank's sums (not yet reduced).

        Args:
            batches: the train shard's batches; with ``steps_per_epoch`` the run's one stream,
                of which this epoch takes that many steps (fewer with ``max_steps_per_epoch``),
                else this epoch's own iterator, read to its end.
        """
        sums = Accumulator((*TRAIN_LOSSES, "images", "seconds", "data_wait_seconds", "first_batch_seconds"))
        step = pretrain_step if phase == "pretrain" else gan_step
        self.model.generator.train()
        self.model.discriminator.train()
        limits = [n for n in (self.steps_per_epoch, self.config.max_steps_per_epoch) if n is not None]
        steps_wanted = min(limits) if limits else None
        started = waited_from = time.perf_counter()
        steps, wait = 0, 0.0
        while steps_wanted is None or steps < steps_wanted:
            batch = next(batches, None)
            if batch is None:
                break
            wait += time.perf_counter() - waited_from
            if steps == 0:
                sums.add("first_batch_seconds", wait)  # the pipeline's start-up, or the wait in the stream
            losses = step(self.model, batch["l"], batch["ab"])
            for name in TRAIN_LOSSES:
                sums.add(name, getattr(losses, name))
            sums.add("images", batch["l"].shape[0])
            steps += 1
            self.global_step += 1
            self.heartbeat.beat()
            waited_from = time.perf_counter()
        if steps == 0:
            raise JobError(
                f"epoch {self.epochs_done} gave worker {self.rank} no full batch: the training split has fewer than "
                f"workers x batch_size = {self.world_size} x {self.config.batch_size} images"
            )
        sums.add("seconds", time.perf_counter() - started)
        sums.add("data_wait_seconds", wait)
        return sums

    @torch.no_grad()
    def validate(self, shard) -> tuple[Accumulator, Samples | None]:
        """Rank 0: metrics over the validation split and the first samples; other ranks: nothing."""
        sums = Accumulator(VAL_METRICS)
        if self.rank != 0:
            return sums, None
        generator = unwrap(self.model.generator).eval()  # as in deployment: running statistics, no dropout
        kept: list[Samples] = []
        wanted = self.config.sample_images
        for shipped in shard.iter_torch_batches(
            batch_size=self.config.batch_size, device=self.device, pin_memory=self.pin_memory
        ):
            batch = dict(zip(("l", "ab"), lab_from_batch(shipped), strict=True))
            with self.model.autocast(self.device):
                predicted = generator(batch["l"]).float()  # (B, 2, S, S)
            for name, total in validation_sums(batch["l"], predicted, batch["ab"]).items():
                sums.add(name, total, batch["l"].shape[0])
            if wanted > 0:
                kept.append((batch["l"][:wanted].cpu(), predicted[:wanted].cpu(), batch["ab"][:wanted].cpu()))
                wanted -= kept[-1][0].shape[0]
        generator.train()
        if not kept:
            return sums, None
        l_norm, predicted_ab, real_ab = (torch.cat(parts) for parts in zip(*kept, strict=True))
        return sums, (l_norm, predicted_ab, real_ab)

    # --- across ranks ----------------------------------------------------------------

    def _reduce(self, sums: Accumulator) -> Accumulator:
        if self.world_size == 1:
            return sums
        vector = sums.to_tensor().to(self.device)
        dist.all_reduce(vector, op=dist.ReduceOp.SUM)
        return Accumulator.from_tensor(sums.names, vector.cpu())

    def _storage_retries(self) -> int:
        """Object-store requests botocore retried on all ranks since the previous row (or the start).

        The previous epoch's checkpoint upload and outputs are included, as is the restore
        of a checkpoint for the first row after it; the last checkpoint's upload is in no row.
        """
        now = retried_requests()
        local, self._retries_mark = now - self._retries_mark, now
        if self.world_size == 1:
            return local
        total = torch.tensor([float(local)], dtype=torch.float64, device=self.device)
        dist.all_reduce(total, op=dist.ReduceOp.SUM)
        return int(total.item())

    def _weight_digests(self) -> list[str]:
        """sha256 of each rank's generator parameters (equal on all ranks when DDP is in sync)."""
        digest = hashlib.sha256()
        for parameter in unwrap(self.model.generator).parameters():
            digest.update(parameter.detach().float().cpu().numpy().tobytes())
        if self.world_size == 1:
            return [digest.hexdigest()]
        digests: list[str] = [""] * self.world_size
        dist.all_gather_object(digests, digest.hexdigest())
        return digests

    # --- checkpoints and outputs ---------------------------------------------------------

    def _checkpoint_state(self) -> dict[str, Any]:
        return {
            "epoch": self.epochs_done,
            "global_step": self.global_step,
            "run": self.config.run,
            "data": self.config.data,
            "image_size": self.config.image_size,
            "world_size": self.world_size,
            "generator_spec": self.generator_spec.model_dump(),
            "parent": parent_record(self.config),
            "discriminator_spec": self.discriminator_spec.model_dump(),
            "config": self.config.public_dict(),
            "history": self.history,
            "grad_scalers": grad_scaler_states({"G": self.model.scaler_g, "D": self.model.scaler_d}),
        }

    def _report(self, row: dict[str, Any], checkpoint: bool) -> None:
        import ray.train

        if not checkpoint:
            ray.train.report(row)
            return
        folder = Path(tempfile.mkdtemp(prefix="checkpoint-", dir=self.staging_dir))
        if self.rank == 0:
            write_checkpoint(
                folder,
                generator=unwrap(self.model.generator),
                discriminator=unwrap(self.model.discriminator),
                optimizer_g=self.model.optimizer_g,
                optimizer_d=self.model.optimizer_d,
                state=self._checkpoint_state(),
            )
        write_rng(folder, self.rank, self.device)
        ray.train.report(
            row,
            checkpoint=ray.train.Checkpoint.from_directory(str(folder)),
            checkpoint_dir_name=checkpoint_dir_name(self.epochs_done),
        )
        # Uploaded now (synchronous upload); in local mode the driver exports from the last one.
        if self.staging_dir is None:
            shutil.rmtree(folder, ignore_errors=True)
        else:
            if self._last_staged is not None:
                shutil.rmtree(self._last_staged, ignore_errors=True)
            self._last_staged = folder

    def _write_outputs(self, samples: Samples | None) -> None:
        """Rank 0: metrics.jsonl (whole history: each epoch exactly once), loss curve, sample grid."""
        if self.rank != 0:
            return
        fs, run = open_url(self.config.run, self.config.storage_options)
        lines = "".join(json.dumps(row) + "\n" for row in self.history)
        write_bytes(fs, join(run, METRICS_NAME), lines.encode())
        if self.history:
            write_bytes(fs, join(run, LOSS_CURVE_NAME), loss_curve_png(self.history))
        if samples is not None:
            epoch = self.epochs_done - 1
            title = f"{self.config.run}  epoch {epoch}  step {self.global_step}"
            write_bytes(fs, join(run, SAMPLES_FOLDER, f"epoch_{epoch:04d}.png"), sample_grid_png(*samples, title=title))
