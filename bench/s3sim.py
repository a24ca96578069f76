"""A simulated S3 for benchmarks and tests: a procedurally generated bucket of up to 100M keys.

A test harness, not a part of the product. moto stays the reference for S3's behaviour (the tests
in ``tests/bench/test_s3sim.py`` check that this simulator answers the calls the product makes as
moto does); the simulator is for scale: it serves a bucket of any number of keys with no storage
per key, and a latency per request, so a listing of 100M keys costs what S3's would in requests.

Start it with one command (it prints the endpoint; point ``AWS_ENDPOINT_URL`` at it)::

    python bench/s3sim.py --layout flat --keys 100000000 --port 9000
    AWS_ENDPOINT_URL=http://127.0.0.1:9000 AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=x \\
        archive-colorizer colorize s3://archive/scans s3://archive/out ...

or in a thread of a test or benchmark::

    with S3Sim(layout="wide", keys=10_000_000) as sim:   # sim.endpoint, sim.url, sim.stats()
        ...

Bucket ``archive`` (``--bucket``) holds ``--keys`` generated keys under ``scans/``, named as a
scanner would, zero padded so that S3's sorted order is the index order:

- ``flat``: one prefix, ``scans/IMG_000000123.jpg``;
- ``tree``: ``--prefixes`` P prefixes of ceil(keys / P) keys, ``scans/box-0042/IMG_000123.jpg``;
- ``wide``: the same with 100,000 prefixes.

Key ``i`` is computed from ``i``; a key's position is found by bisection over the index, so a
``StartAfter`` or ``ContinuationToken`` deep in a 100M-key listing costs ~27 key computations.
A generated object is one of six scikit-image photographs, gray, 96x96, as JPEG (1.6-3.3 KB), chosen
by a hash of the key (Content-Length, ETag and Last-Modified as S3 gives them).

Requests served (path-style addressing, as botocore uses for an IP endpoint): ListObjectsV2
(``Prefix``, ``Delimiter``/CommonPrefixes, ``MaxKeys`` up to 1,000, ``StartAfter``,
``ContinuationToken``, ``encoding-type=url``), HeadObject, GetObject (with ``Range``),
PutObject (kept in files under ``--store``, a temporary folder by default, and listed, read and
deleted like generated keys; ``aws-chunked`` bodies decoded), DeleteObject, DeleteObjects,
HeadBucket, CreateBucket (an empty bucket of stored objects only), GetBucketVersioning (never
enabled). Anything else answers 501 NotImplemented: multipart uploads among them (s3fs uploads
files under 100 MB with one PutObject, :meth:`s3fs.S3FileSystem._pipe_file`, and ``open("wb")``
files under its 50 MB block size likewise), copies, ACLs, tagging. Credentials and signatures
are accepted unchecked. Stored objects' metadata lives in memory (~200 bytes each).

Each request sleeps its type's latency (default 30 ms ``LIST``, 15 ms ``HEAD``/``GET``/``PUT``,
15 ms ``DELETE``) in a thread of a :class:`~http.server.ThreadingHTTPServer`, so concurrent
requests overlap as they do on S3. Requests are counted by type and by prefix (a listing's
``Prefix``, an object's folder): :meth:`S3Sim.stats`, or ``GET /_stats`` (JSON; ``DELETE /_stats``
resets the counts).
"""

from __future__ import annotations

import argparse
import base64
import email.utils
import functools
import hashlib
import io
import json
import math
import shutil
import tempfile
import threading
import time
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit
from xml.etree import ElementTree
from xml.sax.saxutils import escape

from sortedcontainers import SortedDict

ROOT = "scans/"
"""Prefix of every generated key."""
LAYOUTS = ("flat", "tree", "wide")
WIDE_PREFIXES = 100_000
DEFAULT_LATENCY_S = {"LIST": 0.030, "HEAD": 0.015, "GET": 0.015, "PUT": 0.015, "DELETE": 0.015}
"""Seconds each request type sleeps before it answers (other requests: none)."""
MAX_KEYS = 1000
PHOTOS = ("astronaut", "coffee", "chelsea", "camera", "rocket", "moon")
GENERATED_TIME = 1767225600.0
"""Last-Modified of every generated key: 2026-01-01T00:00:00Z."""


@dataclass(frozen=True)
class ObjectMeta:
    """What HEAD says of an object: size in bytes, ETag (quoted MD5), modification time (Unix s)."""

    size: int
    etag: str
    mtime: float
    content_type: str = "binary/octet-stream"
    checksum: str = ""
    """The checksum algorithm the writer sent (``CRC32``, ...; ``x-amz-checksum-*``), listed as S3 lists it."""


def _gray_photos(side: int = 96) -> list[bytes]:
    """scikit-image's photographs as gray ``side`` x ``side`` JPEG files (centre crops, quality 90)."""
    import skimage.data
    from PIL import Image

    out = []
    for name in PHOTOS:
        image = Image.fromarray(getattr(skimage.data, name)()).convert("L")
        crop = min(image.size)
        left, top = (image.width - crop) // 2, (image.height - crop) // 2
        image = image.crop((left, top, left + crop, top + crop)).resize((side, side), Image.Resampling.BILINEAR)
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=90)
        out.append(buffer.getvalue())
    return out


class KeySpace:
    """The generated keys of one layout: ``key(i)`` for ``0 <= i < n``, increasing with ``i``."""

    def __init__(self, layout: str, n: int, prefixes: int = 1000) -> None:
        if layout not in LAYOUTS:
            raise ValueError(f"layout {layout!r}: expected one of {', '.join(LAYOUTS)}")
        self.layout, self.n = layout, n
        if layout == "flat":
            self.per_prefix = max(n, 1)
            self.prefixes = 1
        else:
            self.prefixes = max(1, min(n, WIDE_PREFIXES if layout == "wide" else prefixes))
            self.per_prefix = max(1, math.ceil(n / self.prefixes))
        self.name_digits = max(6, len(str(self.per_prefix - 1)))
        self.prefix_digits = max(4, len(str(self.prefixes - 1)))

    def key(self, i: int) -> str:
        if self.layout == "flat":
            return f"{ROOT}IMG_{i:0{self.name_digits}d}.jpg"
        box, name = divmod(i, self.per_prefix)
        return f"{ROOT}box-{box:0{self.prefix_digits}d}/IMG_{name:0{self.name_digits}d}.jpg"

    def lower_bound(self, text: str) -> int:
        """The first index whose key is ``>= text`` (``n`` if none): bisection, O(log n)."""
        lo, hi = 0, self.n
        while lo < hi:
            mid = (lo + hi) // 2
            if self.key(mid) < text:
                lo = mid + 1
            else:
                hi = mid
        return lo

    def index(self, key: str) -> int | None:
        i = self.lower_bound(key)
        return i if i < self.n and self.key(i) == key else None


class Bucket:
    """Generated keys (or none) plus stored objects (on disk) minus deleted generated keys."""

    def __init__(self, space: KeySpace | None, photos: list[bytes]) -> None:
        self.space, self.photos = space, photos
        self.photo_meta = [
            ObjectMeta(len(p), f'"{hashlib.md5(p).hexdigest()}"', GENERATED_TIME, "image/jpeg") for p in photos
        ]
        self.stored: SortedDict = SortedDict()  # key -> (ObjectMeta, file path)
        self.deleted: set[int] = set()
        self.lock = threading.Lock()

    def generated(self, key: str) -> int | None:
        if self.space is None or not key.startswith(ROOT):
            return None
        i = self.space.index(key)
        return None if i is None or i in self.deleted else i

    def photo(self, key: str) -> int:
        return zlib.crc32(key.encode()) % len(self.photos)

    def head(self, key: str) -> ObjectMeta | None:
        with self.lock:
            if key in self.stored:
                return self.stored[key][0]
        return self.photo_meta[self.photo(key)] if self.generated(key) is not None else None

    def read(self, key: str) -> tuple[ObjectMeta, bytes] | None:
        with self.lock:
            stored = self.stored.get(key)
        if stored is not None:
            with open(stored[1], "rb") as handle:
                return stored[0], handle.read()
        if self.generated(key) is None:
            return None
        photo = self.photo(key)
        return self.photo_meta[photo], self.photos[photo]

    def put(self, key: str, data: bytes, path: str, content_type: str, checksum: str = "") -> ObjectMeta:
        with open(path, "wb") as handle:
            handle.write(data)
        meta = ObjectMeta(len(data), f'"{hashlib.md5(data).hexdigest()}"', time.time(), content_type, checksum)
        with self.lock:
            self.stored[key] = (meta, path)
        return meta

    def delete(self, key: str) -> None:
        with self.lock:
            self.stored.pop(key, None)
            i = self.generated(key)
            if i is not None:
                self.deleted.add(i)

    def _generated_from(self, start: str) -> Iterator[tuple[str, ObjectMeta]]:
        space = self.space
        if space is None:
            return
        for i in range(space.lower_bound(start), space.n):
            if i not in self.deleted:
                key = space.key(i)
                yield key, self.photo_meta[self.photo(key)]

    def _stored_from(self, start: str) -> Iterator[tuple[str, ObjectMeta]]:
        while True:
            with self.lock:
                at = self.stored.bisect_left(start)
                chunk = [(key, self.stored[key][0]) for key in self.stored.keys()[at : at + MAX_KEYS]]
            yield from chunk
            if len(chunk) < MAX_KEYS:
                return
            start = chunk[-1][0] + "\0"

    def entries(self, start: str) -> Iterator[tuple[str, ObjectMeta]]:
        """Every key ``>= start`` in S3's order, with its metadata (stored objects over generated keys)."""
        generated, stored = self._generated_from(start), self._stored_from(start)
        g, s = next(generated, None), next(stored, None)
        while g is not None or s is not None:
            if s is not None and (g is None or s[0] <= g[0]):
                if g is not None and g[0] == s[0]:
                    g = next(generated, None)
                yield s
                s = next(stored, None)
            else:
                assert g is not None
                yield g
                g = next(generated, None)


def _after(text: str) -> str:
    """The smallest string greater than every string that starts with ``text``."""
    return text[:-1] + chr(ord(text[-1]) + 1)


def list_page(
    bucket: Bucket, prefix: str, delimiter: str, start: str, max_keys: int
) -> tuple[list[tuple[str, ObjectMeta]], list[str], str | None]:
    """One ListObjectsV2 page: (contents, common prefixes, resume point or None when not truncated).

    ``start`` is the first key the page may hold (keys ``< start`` are skipped); the resume point
    is the ``start`` of the next page (the continuation token encodes it).
    """
    contents: list[tuple[str, ObjectMeta]] = []
    common: list[str] = []
    cursor = max(start, prefix)
    entries = bucket.entries(cursor)
    while True:
        entry = next(entries, None)
        if entry is None or not entry[0].startswith(prefix):
            return contents, common, None
        if len(contents) + len(common) >= max_keys:
            return contents, common, cursor
        key, meta = entry
        cut = key.find(delimiter, len(prefix)) if delimiter else -1
        if cut >= 0:
            folded = key[: cut + len(delimiter)]
            if folded >= start:  # not the prefix StartAfter points into (as S3 and moto answer)
                common.append(folded)
            cursor = _after(folded)
            entries = bucket.entries(cursor)  # seek past the common prefix: bisection again
        else:
            contents.append(entry)
            cursor = key + "\0"


def _iso(mtime: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(mtime)) + f".{int(mtime * 1000) % 1000:03d}Z"


@functools.lru_cache(maxsize=4096)
def _contents_tail(meta: ObjectMeta) -> str:
    """A listed key's XML after its ``<Key>``: rendered once per metadata (six of them for generated keys),
    so a 1,000-key page costs ~1 ms of CPU, not the client's share of the machine."""
    return (
        f"<LastModified>{_iso(meta.mtime)}</LastModified><ETag>{escape(meta.etag)}</ETag>"
        + (f"<ChecksumAlgorithm>{meta.checksum}</ChecksumAlgorithm>" if meta.checksum else "")
        + f"<Size>{meta.size}</Size><StorageClass>STANDARD</StorageClass></Contents>"
    )


class Simulator:
    """The state behind the HTTP endpoint: buckets, stored files, latencies, request counts."""

    def __init__(
        self,
        layout: str,
        keys: int,
        bucket: str = "archive",
        prefixes: int = 1000,
        store: str | None = None,
        latency: dict[str, float] | None = None,
        photo_side: int = 96,
    ) -> None:
        self.photos = _gray_photos(photo_side)
        self.buckets = {bucket: Bucket(KeySpace(layout, keys, prefixes), self.photos)}
        self.own_store = store is None
        self.store = store or tempfile.mkdtemp(prefix="s3sim-")
        self.latency = {**DEFAULT_LATENCY_S, **(latency or {})}
        self.counts: Counter[str] = Counter()
        self.by_prefix: Counter[tuple[str, str]] = Counter()
        self.keys_listed = 0
        self.lock = threading.Lock()
        self.files = 0

    def count(self, kind: str, prefix: str, listed: int = 0) -> None:
        with self.lock:
            self.counts[kind] += 1
            self.by_prefix[kind, prefix] += 1
            self.keys_listed += listed
        time.sleep(self.latency.get(kind, 0.0))

    def stats(self) -> dict[str, Any]:
        """``requests`` by type, ``by_prefix`` {type: {prefix: n}}, ``keys_listed`` (Contents returned)."""
        with self.lock:
            by_prefix: dict[str, dict[str, int]] = {}
            for (kind, prefix), n in sorted(self.by_prefix.items()):
                by_prefix.setdefault(kind, {})[prefix] = n
            return {"requests": dict(self.counts), "by_prefix": by_prefix, "keys_listed": self.keys_listed}

    def reset_stats(self) -> None:
        with self.lock:
            self.counts.clear()
            self.by_prefix.clear()
            self.keys_listed = 0

    def new_file(self) -> str:
        with self.lock:
            self.files += 1
            return f"{self.store}/{self.files:012d}"


def _folder(key: str) -> str:
    return key.rsplit("/", 1)[0] + "/" if "/" in key else ""


class Handler(BaseHTTPRequestHandler):
    """One S3 request, path-style: ``/bucket``, ``/bucket/key``; ``/_stats`` for the counts."""

    protocol_version = "HTTP/1.1"  # keep-alive: botocore reuses its connections
    sim: Simulator

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002  # BaseHTTPRequestHandler's name
        pass

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in {"x-amz-request-id": "s3sim", **(headers or {})}.items():
            self.send_header(name, value)
        if "Content-Length" not in (headers or {}):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _xml(self, body: str, status: int = 200) -> None:
        data = ('<?xml version="1.0" encoding="UTF-8"?>\n' + body).encode()
        self._send(status, data, {"Content-Type": "application/xml"})

    def _error(self, status: int, code: str, message: str, resource: str = "") -> None:
        self._xml(
            f"<Error><Code>{code}</Code><Message>{escape(message)}</Message>"
            f"<Resource>{escape(resource)}</Resource><RequestId>s3sim</RequestId></Error>",
            status,
        )

    def _parse(self) -> tuple[str, str, dict[str, str]] | None:
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        bucket, _, key = unquote(parts.path).lstrip("/").partition("/")
        if bucket == "_stats":
            if self.command == "DELETE":
                self.sim.reset_stats()
            self._send(200, json.dumps(self.sim.stats()).encode(), {"Content-Type": "application/json"})
            return None
        return bucket, key, query

    def _body(self) -> bytes:
        data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if "aws-chunked" in (self.headers.get("Content-Encoding") or "") or (
            self.headers.get("x-amz-content-sha256", "").startswith("STREAMING-")
        ):
            out, rest = bytearray(), data
            while rest:
                head, _, rest = rest.partition(b"\r\n")
                size = int(head.split(b";")[0], 16)
                if size == 0:
                    break
                out += rest[:size]
                rest = rest[size + 2 :]
            return bytes(out)
        return data

    def _bucket(self, name: str) -> Bucket | None:
        bucket = self.sim.buckets.get(name)
        if bucket is None:
            if self.command == "HEAD":
                self._send(404)
            else:
                self._error(404, "NoSuchBucket", "The specified bucket does not exist", name)
        return bucket

    def do_GET(self) -> None:
        parsed = self._parse()
        if parsed is None:
            return
        name, key, query = parsed
        bucket = self._bucket(name)
        if bucket is None:
            return
        if not key:
            if "versioning" in query:
                return self._xml('<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"/>')
            if query.get("list-type") != "2":
                return self._error(501, "NotImplemented", "only ListObjectsV2 (list-type=2) is simulated")
            return self._list(name, bucket, query)
        self.sim.count("GET", _folder(key))
        found = bucket.read(key)
        if found is None:
            return self._error(404, "NoSuchKey", "The specified key does not exist.", key)
        meta, data = found
        headers = self._object_headers(meta)
        span = self.headers.get("Range")
        if span and span.startswith("bytes="):
            first, _, last = span[6:].partition("-")
            start = int(first) if first else max(0, len(data) - int(last))
            end = min(int(last), len(data) - 1) if first and last else len(data) - 1
            if start >= len(data):
                return self._error(416, "InvalidRange", "The requested range is not satisfiable", key)
            headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
            return self._send(206, data[start : end + 1], headers)
        self._send(200, data, headers)

    def _object_headers(self, meta: ObjectMeta) -> dict[str, str]:
        return {
            "ETag": meta.etag,
            "Last-Modified": email.utils.formatdate(meta.mtime, usegmt=True),
            "Content-Type": meta.content_type,
            "Accept-Ranges": "bytes",
        }

    def _list(self, name: str, bucket: Bucket, query: dict[str, str]) -> None:
        prefix, delimiter = query.get("prefix", ""), query.get("delimiter", "")
        max_keys = min(int(query.get("max-keys", MAX_KEYS)), MAX_KEYS)
        token, start_after = query.get("continuation-token"), query.get("start-after", "")
        start = base64.urlsafe_b64decode(token.encode()).decode() if token else start_after + "\0" * bool(start_after)
        contents, common, resume = list_page(bucket, prefix, delimiter, start, max_keys)
        self.sim.count("LIST", prefix, listed=len(contents))
        url = query.get("encoding-type") == "url"

        def text(value: str) -> str:
            return quote(value, safe="/~") if url else escape(value)

        out = [
            '<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">',
            f"<Name>{escape(name)}</Name><Prefix>{text(prefix)}</Prefix>",
            f"<KeyCount>{len(contents) + len(common)}</KeyCount>",
            f"<MaxKeys>{max_keys}</MaxKeys><IsTruncated>{'true' if resume else 'false'}</IsTruncated>",
        ]
        if delimiter:
            out.append(f"<Delimiter>{text(delimiter)}</Delimiter>")
        if url:
            out.append("<EncodingType>url</EncodingType>")
        if token:
            out.append(f"<ContinuationToken>{escape(token)}</ContinuationToken>")
        if start_after:
            out.append(f"<StartAfter>{text(start_after)}</StartAfter>")
        if resume:
            next_token = base64.urlsafe_b64encode(resume.encode()).decode()
            out.append(f"<NextContinuationToken>{next_token}</NextContinuationToken>")
        out += [f"<Contents><Key>{text(key)}</Key>{_contents_tail(meta)}" for key, meta in contents]
        out += [f"<CommonPrefixes><Prefix>{text(p)}</Prefix></CommonPrefixes>" for p in common]
        out.append("</ListBucketResult>")
        self._xml("".join(out))

    def do_HEAD(self) -> None:
        parsed = self._parse()
        if parsed is None:
            return
        name, key, _ = parsed
        bucket = self._bucket(name)
        if bucket is None:
            return
        if not key:
            return self._send(200)
        self.sim.count("HEAD", _folder(key))
        meta = bucket.head(key)
        if meta is None:
            return self._send(404)
        self._send(200, headers={**self._object_headers(meta), "Content-Length": str(meta.size)})

    def do_PUT(self) -> None:
        parsed = self._parse()
        if parsed is None:
            return
        name, key, query = parsed
        data = self._body()
        if not key:
            self.sim.buckets.setdefault(name, Bucket(None, self.sim.photos))
            return self._send(200, headers={"Location": f"/{name}"})
        bucket = self._bucket(name)
        if bucket is None:
            return
        if query or "x-amz-copy-source" in self.headers:
            return self._error(501, "NotImplemented", "multipart uploads, copies, ACLs and tags are not simulated")
        self.sim.count("PUT", _folder(key))
        if self.headers.get("If-None-Match") == "*" and bucket.head(key) is not None:
            return self._error(
                412, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold"
            )
        content_type = self.headers.get("Content-Type") or "binary/octet-stream"
        sums = [h[len("x-amz-checksum-") :].upper() for h in self.headers if h.lower().startswith("x-amz-checksum-")]
        meta = bucket.put(key, data, self.sim.new_file(), content_type, next((s for s in sums if s != "TYPE"), ""))
        self._send(200, headers={"ETag": meta.etag})

    def do_DELETE(self) -> None:
        parsed = self._parse()
        if parsed is None:
            return
        name, key, _ = parsed
        bucket = self._bucket(name)
        if bucket is None:
            return
        self.sim.count("DELETE", _folder(key))
        bucket.delete(key)
        self._send(204)

    def do_POST(self) -> None:
        parsed = self._parse()
        if parsed is None:
            return
        name, key, query = parsed
        data = self._body()
        bucket = self._bucket(name)
        if bucket is None:
            return
        if key or "delete" not in query:
            return self._error(501, "NotImplemented", "only DeleteObjects is simulated among POST requests")
        self.sim.count("DELETE", "")
        keys = [node.text or "" for node in ElementTree.fromstring(data).iter() if node.tag.endswith("Key")]
        for each in keys:
            bucket.delete(each)
        deleted = "".join(f"<Deleted><Key>{escape(k)}</Key></Deleted>" for k in keys)
        self._xml(f'<DeleteResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">{deleted}</DeleteResult>')


class S3Sim:
    """The simulator in a thread of this process: ``with S3Sim(...) as sim:`` serves ``sim.endpoint``.

    Args:
        layout: ``flat``, ``tree`` or ``wide`` (module docstring).
        keys: generated keys in bucket ``bucket`` under ``scans/`` (up to 100M and beyond: nothing is stored per key).
        bucket: the generated bucket's name.
        prefixes: P of the ``tree`` layout.
        store: folder for PUT objects (default: a temporary folder, removed by :meth:`stop`).
        latency: seconds per request type (``LIST``, ``HEAD``, ``GET``, ``PUT``, ``DELETE``) over the defaults.
        photo_side: side (pixels) of the gray photographs the generated keys serve.
        host, port: where to listen (port 0: a free one).
    """

    def __init__(
        self,
        layout: str = "flat",
        keys: int = 1000,
        bucket: str = "archive",
        prefixes: int = 1000,
        store: str | None = None,
        latency: dict[str, float] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        photo_side: int = 96,
    ) -> None:
        self.sim = Simulator(layout, keys, bucket, prefixes, store, latency, photo_side)
        self.bucket = bucket
        handler = type("BoundHandler", (Handler,), {"sim": self.sim})
        self.server = ThreadingHTTPServer((host, port), handler)
        self.server.daemon_threads = True
        self.endpoint = f"http://{host}:{self.server.server_address[1]}"
        self.url = f"s3://{bucket}/{ROOT.rstrip('/')}"
        self._thread: threading.Thread | None = None

    @property
    def space(self) -> KeySpace:
        space = self.sim.buckets[self.bucket].space
        assert space is not None
        return space

    def start(self) -> S3Sim:
        self._thread = threading.Thread(target=self.server.serve_forever, name="s3sim", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self.sim.own_store:
            shutil.rmtree(self.sim.store, ignore_errors=True)

    def stats(self) -> dict[str, Any]:
        """Requests by type and by prefix since the start or the last :meth:`reset_stats`."""
        return self.sim.stats()

    def reset_stats(self) -> None:
        self.sim.reset_stats()

    def __enter__(self) -> S3Sim:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--layout", choices=LAYOUTS, default="flat")
    parser.add_argument("--keys", type=int, default=1_000_000, help="generated keys (default 1,000,000)")
    parser.add_argument("--prefixes", type=int, default=1000, help="prefixes of the tree layout")
    parser.add_argument("--bucket", default="archive")
    parser.add_argument("--store", help="folder for PUT objects (default: a temporary one, removed at exit)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    for kind, seconds in DEFAULT_LATENCY_S.items():
        parser.add_argument(f"--{kind.lower()}-ms", type=float, default=seconds * 1000, help=f"{kind} latency")
    args = parser.parse_args(argv)
    latency = {kind: getattr(args, f"{kind.lower()}_ms") / 1000 for kind in DEFAULT_LATENCY_S}
    sim = S3Sim(args.layout, args.keys, args.bucket, args.prefixes, args.store, latency, args.host, args.port)
    print(f"s3sim: {sim.url} ({args.layout}, {args.keys:,} keys) at AWS_ENDPOINT_URL={sim.endpoint}", flush=True)
    try:
        sim.server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        sim.server.server_close()
        if sim.sim.own_store:
            shutil.rmtree(sim.sim.store, ignore_errors=True)


if __name__ == "__main__":
    main()
