"""The evaluate job: score a generator on held-out colour photographs against the gray baseline.

``run(config)`` reads the held-out images (:mod:`.data`: the ``val`` split of prepare's shards,
or a folder of colour photographs), makes each one gray and colorizes it exactly as the
colorize job does, at ``size`` x ``size`` instead of full resolution:

    truth (S, S, 3) -> gray = BT.601 luma (colorize's ``gray_planes``) -> squeezed to the model
    size (``small_gray``) -> :class:`~archive_colorizer.colorize.predictor.Predictor` (chroma)
    -> :func:`~archive_colorizer.color.merge_full_resolution` (gray as luma + chroma) -> RGB

and scores it (:mod:`.metrics`: PSNR, SSIM, both also on chroma alone, colourfulness and dCF,
CIEDE2000) next to the gray baseline, the same gray image with no colour (ab = 0,
R = G = B = gray). Outputs are not JPEG-encoded: the scores measure the model, not the codec.
Unlike train's ``val_PSNR`` (Lab at the training size with the truth's L), the gray values here
are the photograph's own luma, as in an archive scan.

It runs in this process, without Ray: a held-out set is small (``max_images``, default 1000),
images are streamed, and memory holds one batch plus the contact sheet's ``sheet_images``
images. Writes ``OUT/evaluation.json`` and ``OUT/contact_sheet.png``.

With ``degrade`` (``--degrade RECIPE``, :mod:`archive_colorizer.degrade`) every image is also
made gray, damaged (L only, from its own seed) and colorized from the damaged gray; the
prediction (``model_degraded``) and the damaged gray (``gray_degraded``) are scored against the
clean truth next to the clean colourings.
"""

from archive_colorizer.lazy import reexports

__all__ = ["EvaluateResult", "colorize_truths", "run"]
__getattr__ = reexports(__name__, {"EvaluateResult": "job", "colorize_truths": "job", "run": "job"})
