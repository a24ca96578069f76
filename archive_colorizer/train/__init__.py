"""train: data-parallel pix2pix training with Ray Train (``archive-colorizer train``).

``run(config)`` reads the prepare job's shards with Ray Data, trains on ``config.workers``
Ray Train workers (DDP), checkpoints to the run directory, and exports the generator artifact
at the end. Resubmitting the same command continues from the run's last checkpoint.

Run directory (any fsspec URL)::

    config.yaml                  resolved config of the latest submission (secrets redacted)
    checkpoint_epoch_NNNN/       Ray Train checkpoints (the newest --keep-checkpoints)
    checkpoint_manager_snapshot.json   Ray Train's record of them
    metrics.jsonl                one row per epoch, each epoch exactly once
    loss_curve.png               losses and validation metrics per epoch
    samples/epoch_NNNN.png       gray input | prediction | ground truth, per epoch
    generator/                   the exported artifact (unless --export says elsewhere)
"""

from archive_colorizer.lazy import reexports

__all__ = ["TrainResult", "run"]
__getattr__ = reexports(__name__, {"TrainResult": "job", "run": "job"})
