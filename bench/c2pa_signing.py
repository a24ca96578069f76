"""Benchmark: what ``--c2pa-sign`` adds per output, and what ``verify`` costs (JSON on stdout).

For each output kind colorize writes (4:2:0 JPEG, 8-bit PNG, 16-bit PNG, 8-bit TIFF, 16-bit
TIFF) a real photograph (scikit-image's ``chelsea``, 451 x 300, scaled to ``--megapixels``) is
made gray, colorized with its own chroma by colorize's encoder (:func:`merge.render`), then
signed ``--repeats`` times with a throwaway ES256 signer (:func:`archive_colorizer.credentials.make_test_credentials`)
and verified as many times; the median milliseconds per image are reported next to the
encode's, on one thread. Offline: no timestamp authority.

    python bench/c2pa_signing.py --megapixels 1.5 --repeats 20
"""

from __future__ import annotations

import argparse
import functools
import io
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from PIL import Image

from archive_colorizer import images, signing
from archive_colorizer.colorize import encode, merge
from archive_colorizer.credentials import make_test_credentials

KINDS = (("JPEG", False), ("PNG", False), ("PNG", True), ("TIFF", False), ("TIFF", True))


def _median_ms(work: Callable[[], Any], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return round(statistics.median(times) * 1000, 2)


def _photo(megapixels: float) -> np.ndarray:
    from skimage import data

    photo = Image.fromarray(data.chelsea())
    scale = (megapixels * 1e6 / (photo.width * photo.height)) ** 0.5
    return np.asarray(photo.resize((round(photo.width * scale), round(photo.height * scale)), Image.Resampling.LANCZOS))


def _gray_input(photo: np.ndarray, sixteen: bool) -> bytes:
    gray = Image.fromarray(photo).convert("L")
    buffer = io.BytesIO()
    if sixteen:
        Image.fromarray(np.asarray(gray, np.uint16) * 257).save(buffer, format="PNG")
    else:
        gray.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megapixels", type=float, default=1.5, help="size of the photograph (default 1.5 MP)")
    parser.add_argument("--repeats", type=int, default=20, help="timed repetitions per kind (default 20)")
    args = parser.parse_args(argv)
    photo = _photo(args.megapixels)
    ycbcr = np.asarray(
        Image.fromarray(photo).convert("YCbCr").resize((256, 256), Image.Resampling.BILINEAR), np.float32
    )
    chroma = np.ascontiguousarray(ycbcr[..., 1:].transpose(2, 0, 1) - 128.0)
    provenance = encode.Provenance("bench", "0" * 64)
    with tempfile.TemporaryDirectory(prefix="c2pa-bench-") as folder:
        made = make_test_credentials(folder)
        signer = signing.Signer(made.chain_pem, made.key_pem)
        kinds = {}
        for fmt, sixteen in KINDS:
            original = _gray_input(photo, sixteen)
            decoded = images.decode(original)
            output = merge.render(decoded, chroma, fmt, provenance)
            input_format = "PNG" if sixteen else "JPEG"

            sign = functools.partial(signer.sign, output, fmt, original, input_format, "bench", "0" * 64)
            signed = sign()
            state = signing.verify_bytes(signed, trust_anchors=made.root_pem).state
            kinds[f"{fmt.lower()}{16 if sixteen else 8}"] = {
                "encode_ms": _median_ms(
                    functools.partial(merge.render, decoded, chroma, fmt, provenance), args.repeats
                ),
                "sign_ms": _median_ms(sign, args.repeats),
                "verify_ms": _median_ms(functools.partial(signing.verify_bytes, signed), args.repeats),
                "output_bytes": len(output),
                "added_bytes": len(signed) - len(output),
                "state": state,
            }
    import c2pa

    report = {
        "width": photo.shape[1],
        "height": photo.shape[0],
        "repeats": args.repeats,
        "c2pa_python": c2pa.__version__,
        "c2pa_rs": c2pa.sdk_version(),
        "kinds": kinds,
    }
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
