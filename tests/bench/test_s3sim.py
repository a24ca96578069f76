"""bench/s3sim.py, the simulated S3, answers the calls the product makes as moto does, and scales.

The same generated keys (and the same bytes) are put into a moto bucket; every call is made
against both through s3fs/botocore unchanged and the answers compared (LastModified aside: the
simulator's generated keys carry a fixed date). The last tests list a 100M-key bucket at a
point deep in its middle, with no storage per key.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import psutil
import pytest

from archive_colorizer import folders
from tests.conftest import REPO_ROOT

if str(REPO_ROOT / "bench") not in sys.path:
    sys.path.append(str(REPO_ROOT / "bench"))

import s3sim  # noqa: E402  # bench/ is not a package

PREFIXES, PER_PREFIX = 2, 750
"""A tree of 2 prefixes of 750 keys: the whole bucket's listing pages past 1,000 keys."""
NO_LATENCY = dict.fromkeys(s3sim.DEFAULT_LATENCY_S, 0.0)


@pytest.fixture(scope="module")
def pair(moto_server):
    """(simulator fs, moto fs, bucket name): the same keys and bytes in both."""
    import boto3
    import botocore.config
    import s3fs

    bucket = f"sim-{uuid.uuid4().hex[:10]}"
    with s3sim.S3Sim("tree", PREFIXES * PER_PREFIX, bucket=bucket, prefixes=PREFIXES, latency=NO_LATENCY) as sim:
        # As a scanner's uploads without a checksum: S3 lists none for them (nor does the simulator).
        config = botocore.config.Config(request_checksum_calculation="when_required")
        client = boto3.client("s3", endpoint_url=moto_server, config=config)
        client.create_bucket(Bucket=bucket)
        generated = sim.sim.buckets[bucket]

        def put(i: int) -> None:
            key = sim.space.key(i)
            body = generated.photos[generated.photo(key)]
            client.put_object(Bucket=bucket, Key=key, Body=body, ContentType="image/jpeg")

        with ThreadPoolExecutor(16) as pool:
            list(pool.map(put, range(sim.space.n)))
        options = {"key": "k", "secret": "s", "skip_instance_cache": True}
        yield (
            s3fs.S3FileSystem(endpoint_url=sim.endpoint, **options),
            s3fs.S3FileSystem(endpoint_url=moto_server, **options),
            bucket,
            sim,
        )


def _clean(answer):
    """``answer`` without LastModified (and s3fs's cached listings out of the way)."""
    if isinstance(answer, dict):
        return {k: _clean(v) for k, v in answer.items() if k not in ("LastModified", "ResponseMetadata")}
    if isinstance(answer, list):
        return [_clean(v) for v in answer]
    return answer


def _both(pair, call):
    sim_fs, moto_fs, bucket, _ = pair
    answers = []
    for fs in (sim_fs, moto_fs):
        fs.invalidate_cache()
        answers.append(_clean(call(fs, bucket)))
    return answers


def test_keys_sort_in_index_order_and_name_scanner_folders():
    space = s3sim.KeySpace("tree", 2_000_000, prefixes=150)
    assert space.key(0) == "scans/box-0000/IMG_000000.jpg"
    assert space.key(13_335) == "scans/box-0001/IMG_000001.jpg"  # 13,334 keys per box
    keys = [space.key(i) for i in range(0, space.n, 9_973)]
    assert keys == sorted(keys)
    assert space.lower_bound("scans/box-0001/") == 13_334
    flat = s3sim.KeySpace("flat", 100_000_000)
    assert flat.key(99_999_999) == "scans/IMG_99999999.jpg"
    assert s3sim.KeySpace("wide", 100_000_000).key(1_000) == "scans/box-00001/IMG_000000.jpg"


@pytest.mark.parametrize(
    "name,call",
    [
        ("ls root", lambda fs, b: fs.ls(f"{b}/scans", detail=True)),
        ("ls a folder", lambda fs, b: fs.ls(f"{b}/scans/box-0001", detail=True)),
        ("find all 1,500", lambda fs, b: fs.find(f"{b}/scans", detail=True)),
        ("find with folders", lambda fs, b: fs.find(f"{b}/scans", withdirs=True)),
        ("find a name prefix", lambda fs, b: fs.find(f"{b}/scans/box-0001/IMG_0010", prefix="")),
        ("walk", lambda fs, b: list(fs.walk(f"{b}"))),
        ("info of a key", lambda fs, b: fs.info(f"{b}/scans/box-0000/IMG_000042.jpg")),
        ("info of a folder", lambda fs, b: fs.info(f"{b}/scans/box-0001")),
        ("exists", lambda fs, b: [fs.exists(f"{b}/{p}") for p in ("scans", "scans/box-0001/IMG_000007.jpg", "nope")]),
        ("isdir/isfile", lambda fs, b: [fs.isdir(f"{b}/scans/box-0000"), fs.isfile(f"{b}/scans/box-0000")]),
        ("cat", lambda fs, b: fs.cat(f"{b}/scans/box-0001/IMG_000749.jpg")),
        ("cat a range", lambda fs, b: fs.cat_file(f"{b}/scans/box-0000/IMG_000003.jpg", start=10, end=500)),
        ("open and read", lambda fs, b: fs.open(f"{b}/scans/box-0000/IMG_000005.jpg").read()),
        ("product's folder pages", lambda fs, b: list(folders.iter_folder_pages(fs, f"{b}/scans", True, 700))),
        ("product's subfolders", lambda fs, b: folders.list_subfolders(fs, f"{b}/scans")),
        ("product's big folder", lambda fs, b: folders.list_subfolders(fs, f"{b}/scans/box-0000")),
    ],
)
def test_s3fs_calls_answer_as_moto(pair, name, call):
    simulated, reference = _both(pair, call)
    assert simulated == reference, name


def test_missing_keys_raise_as_on_moto(pair):
    for fs in pair[:2]:
        with pytest.raises(FileNotFoundError):
            fs.info(f"{pair[2]}/scans/box-0000/IMG_999999.jpg")
        with pytest.raises(FileNotFoundError):
            fs.cat(f"{pair[2]}/scans/none.jpg")


@pytest.mark.parametrize(
    "params",
    [
        {"Prefix": "scans/", "Delimiter": "/"},
        {"Prefix": "scans/box-0000/", "MaxKeys": 200},
        {"Prefix": "scans/", "StartAfter": "scans/box-0000/IMG_000097.jpg"},
        {"Prefix": "scans/", "Delimiter": "/", "StartAfter": "scans/box-0000/"},
        {"Prefix": "scans/", "Delimiter": "/", "MaxKeys": 1},
        {"Prefix": "scans/", "StartAfter": "scans/box-0000/IMG_000697.jpg", "Delimiter": "/"},
        {"Prefix": "scans/box-0001/IMG_0005", "Delimiter": "/", "MaxKeys": 30},
        {"StartAfter": "scans/box-0001/IMG_000748.jpg"},
        {"StartAfter": "scans/box-0001/IMG_000749.jpg"},
        {"Prefix": "scans/box", "Delimiter": "-"},
        {"Prefix": "nothing/"},
    ],
)
def test_list_objects_v2_pages_as_moto(pair, params):
    """ListObjectsV2 followed page by page through its ContinuationToken: the same pages on both."""

    def pages(fs, bucket):
        client, out, token = _client(fs.endpoint_url), [], None
        while True:
            page = client.list_objects_v2(Bucket=bucket, **params, **({"ContinuationToken": token} if token else {}))
            page.pop("ContinuationToken", None)  # S3 echoes both on later pages, moto neither
            page.pop("StartAfter", None) if token else None
            token = page.pop("NextContinuationToken", None)
            out.append(page)
            if not page["IsTruncated"]:
                return out

    simulated, reference = _both(pair, pages)
    assert simulated == reference


def _client(endpoint):
    import boto3

    # Credentials of its own: the simulator checks none, and the test must not depend on
    # another test having started moto (which sets the AWS variables).
    return boto3.client(
        "s3", endpoint_url=endpoint, aws_access_key_id="sim", aws_secret_access_key="sim", region_name="us-east-1"
    )


def test_writes_are_listed_read_and_deleted_as_on_moto(pair):
    def cycle(fs, bucket):
        path = f"{bucket}/scans/box-0001/IMG_000500.jpg.colorized.png"
        fs.pipe(path, b"png bytes")
        with fs.open(f"{bucket}/out/a b/c.txt", "wb") as handle:  # a name that needs URL encoding
            handle.write(b"text")
        fs.invalidate_cache()
        seen = [fs.cat(path), fs.info(path)["size"], fs.ls(f"{bucket}/out/a b"), fs.find(f"{bucket}/out")]
        seen.append(fs.ls(f"{bucket}/scans/box-0001")[499:502])
        fs.rm(path)
        fs.rm(f"{bucket}/out", recursive=True)
        fs.invalidate_cache()
        return [*seen, fs.exists(path), fs.ls(f"{bucket}/scans/box-0001")[499:502], fs.exists(f"{bucket}/out")]

    simulated, reference = _both(pair, cycle)
    assert simulated == reference
    assert simulated[0] == b"png bytes" and simulated[1] == 9 and simulated[-2][2].endswith("IMG_000501.jpg")


def test_requests_are_counted_by_type_and_prefix(pair):
    sim_fs, _, bucket, sim = pair
    sim.reset_stats()
    sim_fs.invalidate_cache()
    assert len(sim_fs.find(f"{bucket}/scans")) == 1500
    sim_fs.invalidate_cache()
    sim_fs.info(f"{bucket}/scans/box-0000/IMG_000001.jpg")
    sim_fs.cat_file(f"{bucket}/scans/box-0000/IMG_000001.jpg")
    import json
    import urllib.request

    with urllib.request.urlopen(f"{sim.endpoint}/_stats") as answer:
        stats = json.load(answer)
    assert stats == sim.stats()
    assert stats["requests"] == {"LIST": 2, "HEAD": 2, "GET": 1}  # s3fs's cat_file HEADs before its GET
    assert stats["by_prefix"]["LIST"] == {"scans/": 2} and stats["keys_listed"] == 1500
    assert stats["by_prefix"]["GET"] == {"scans/box-0000/": 1}


def test_latency_is_slept_per_request_and_requests_overlap():
    with s3sim.S3Sim("flat", 5000, latency={"LIST": 1.0}) as sim:
        client = _client(sim.endpoint)
        client.list_objects_v2(Bucket="archive", MaxKeys=1)  # connect
        started = time.perf_counter()
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda _: client.list_objects_v2(Bucket="archive", MaxKeys=1), range(4)))
        elapsed = time.perf_counter() - started
    assert 1.0 <= elapsed < 3.0  # four 1 s listings at once, not one after another (4 s)


def test_a_100m_key_flat_bucket_lists_deep_in_the_middle_without_storage_per_key():
    process = psutil.Process(os.getpid())
    before = process.memory_info().rss
    with s3sim.S3Sim("flat", 100_000_000, latency=NO_LATENCY) as sim:
        client = _client(sim.endpoint)
        start_after = sim.space.key(73_456_788)
        started = time.perf_counter()
        page = client.list_objects_v2(Bucket="archive", Prefix="scans/", StartAfter=start_after)
        following = client.list_objects_v2(
            Bucket="archive", Prefix="scans/", ContinuationToken=page["NextContinuationToken"]
        )
        elapsed = time.perf_counter() - started
        last = client.list_objects_v2(Bucket="archive", StartAfter=sim.space.key(99_999_997))
        grown = process.memory_info().rss - before
    assert [c["Key"] for c in page["Contents"]] == [sim.space.key(i) for i in range(73_456_789, 73_457_789)]
    assert page["Contents"][0]["Key"] == "scans/IMG_73456789.jpg" and page["IsTruncated"]
    assert following["Contents"][0]["Key"] == "scans/IMG_73457789.jpg" and len(following["Contents"]) == 1000
    assert [c["Key"] for c in last["Contents"]] == ["scans/IMG_99999998.jpg", "scans/IMG_99999999.jpg"]
    assert not last["IsTruncated"]
    assert elapsed < 10.0  # two pages (well under a second); a per-key walk from the start would take minutes
    assert grown < 60 * 2**20  # the photographs, threads and botocore's client; nothing per key
