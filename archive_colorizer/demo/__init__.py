"""The demo (``make demo``, ``archive-colorizer demo``): the whole product on real photographs.

``run(config)`` starts a local Ray (no cluster, cloud account or GPU) and runs the same jobs a
user runs, one after the other, on the output of the one before:

1. ``photos``: the bundled colour photographs (:mod:`.photos`) -> a training collection of
   overlapping crops, and a validation collection of the held-out photos;
2. ``prepare``: -> Parquet shards;
3. ``train``: L1 pretraining, then pix2pix's GAN, on 2 CPU workers -> run directory (metrics,
   loss curve, sample grids, checkpoint) and the exported generator artifact;
4. ``archive``: scikit-image's gray photographs and gray versions of the held-out photos;
5. ``colorize``: -> colorized images, manifest, summary;
6. ``figure``: ``before-after.png`` from the colorize run's own inputs and outputs.

``--photos``, ``--archive`` and ``--model`` replace steps 1, 4 and 1-3 with the user's own
collection, archive or generator. Each step is a function of :class:`DemoRun` registered in
:data:`STEPS`, so another step (e.g. an evaluation of the colorized archive) is one function
and one entry. ``OUTPUT/demo.json`` records where everything is, each step's seconds and the
machine's load average.
"""

from archive_colorizer.lazy import reexports

__all__ = ["DemoResult", "DemoRun", "STEPS", "Step", "run"]
__getattr__ = reexports(__name__, {"STEPS": "job", "DemoResult": "job", "DemoRun": "job", "Step": "job", "run": "job"})
