"""Generator artifact: round trips through a local path and memory://, refusals with clear errors."""

from __future__ import annotations

import json

import fsspec
import pytest
import torch

from archive_colorizer.errors import ArtifactError
from archive_colorizer.models import GeneratorSpec
from archive_colorizer.models.artifact import METADATA_NAME, WEIGHTS_NAME, load_generator, save_generator

SPEC = GeneratorSpec(ngf=8, num_downs=5)


@pytest.fixture
def generator() -> torch.nn.Module:
    torch.manual_seed(1)
    model = SPEC.build()
    # Move BatchNorm buffers away from their defaults so the round trip must carry them.
    model.train()
    with torch.no_grad():
        model(torch.rand(4, 1, 32, 32) * 2 - 1)
    return model.eval()


def _memory_url() -> str:
    import uuid

    return f"memory://artifacts/{uuid.uuid4().hex}"


@pytest.mark.parametrize("kind", ["local", "memory"])
def test_round_trip_gives_identical_outputs(generator, tmp_path, kind):
    url = str(tmp_path / "gen") if kind == "local" else _memory_url()
    metadata = save_generator(generator, url, spec=SPEC, working_size=32, provenance={"run": "test", "epoch": 3})
    loaded = load_generator(url)
    assert loaded.spec == SPEC and loaded.working_size == 32
    assert loaded.sha256 == metadata["sha256"] and len(loaded.sha256) == 64
    assert loaded.metadata["provenance"] == {"run": "test", "epoch": 3}
    assert loaded.metadata["color"]["l_scale"] == 50.0 and loaded.metadata["color"]["ab_scale"] == 110.0
    assert not loaded.generator.training
    inputs = torch.rand(2, 1, 32, 32) * 2 - 1
    with torch.inference_mode():
        assert torch.equal(loaded.generator(inputs), generator(inputs))


def test_loading_by_file_path_finds_the_folder(generator, tmp_path):
    save_generator(generator, str(tmp_path / "gen"), spec=SPEC, working_size=32)
    assert load_generator(str(tmp_path / "gen" / METADATA_NAME)).working_size == 32
    assert load_generator(str(tmp_path / "gen" / WEIGHTS_NAME)).working_size == 32


def test_truncated_weights_are_refused(generator, tmp_path):
    url = str(tmp_path / "gen")
    save_generator(generator, url, spec=SPEC, working_size=32)
    weights = tmp_path / "gen" / WEIGHTS_NAME
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(ArtifactError, match="truncated") as info:
        load_generator(url)
    assert url in str(info.value)


def test_tampered_sha256_is_refused(generator):
    url = _memory_url()
    save_generator(generator, url, spec=SPEC, working_size=32)
    fs = fsspec.filesystem("memory")
    meta_path = url.removeprefix("memory://") + "/" + METADATA_NAME
    metadata = json.loads(fs.cat_file(meta_path))
    metadata["sha256"] = "0" * 64
    fs.pipe_file(meta_path, json.dumps(metadata).encode())
    with pytest.raises(ArtifactError, match="sha256") as info:
        load_generator(url)
    assert "memory://" in str(info.value)


def test_weights_that_do_not_match_the_architecture_are_refused(generator, tmp_path):
    url = str(tmp_path / "gen")
    save_generator(generator, url, spec=SPEC, working_size=32)
    meta_path = tmp_path / "gen" / METADATA_NAME
    metadata = json.loads(meta_path.read_text())
    metadata["spec"]["ngf"] = 16
    meta_path.write_text(json.dumps(metadata))
    with pytest.raises(ArtifactError, match="do not match the architecture"):
        load_generator(url)


def test_missing_and_corrupt_metadata_are_refused(tmp_path):
    with pytest.raises(ArtifactError, match="missing") as info:
        load_generator(str(tmp_path / "nowhere"))
    assert "nowhere" in str(info.value)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / METADATA_NAME).write_text("{not json")
    with pytest.raises(ArtifactError, match="corrupt generator.json"):
        load_generator(str(tmp_path / "bad"))


@pytest.mark.parametrize("name", ["model.pt", "generator.pth", "last.ckpt"])
def test_pickled_checkpoints_are_refused_by_name(tmp_path, name):
    path = tmp_path / name
    torch.save({"weights": torch.zeros(1)}, path)
    with pytest.raises(ArtifactError, match="never unpickles"):
        load_generator(str(path))


def test_working_size_must_fit_the_unet(generator, tmp_path):
    with pytest.raises(ValueError, match="divisible"):
        save_generator(generator, str(tmp_path / "gen"), spec=SPEC, working_size=48)


class _Trap:
    """Unpickling this creates the file ``path``: proof that something unpickled it."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        import pathlib

        return pathlib.Path.touch, (pathlib.Path(self.path),)


def test_a_pickle_with_any_name_is_refused_without_being_unpickled(tmp_path, capsys):
    import hashlib
    import pickle

    from archive_colorizer import cli

    marker = tmp_path / "unpickled"
    trap = pickle.dumps(_Trap(str(marker)))
    pickle.loads(trap)  # the trap works ...
    assert marker.exists()
    marker.unlink()  # ... and is armed again
    (tmp_path / "model.weights").write_bytes(trap)  # a suffix that says nothing
    with pytest.raises(ArtifactError, match="is a file, not a generator artifact folder"):
        load_generator(str(tmp_path / "model.weights"))
    # A pickle in place of the weights, with generator.json vouching for its size and sha256.
    folder = tmp_path / "disguised"
    folder.mkdir()
    (folder / WEIGHTS_NAME).write_bytes(trap)
    metadata = {
        "format": "archive-colorizer/generator",
        "format_version": 1,
        "spec": SPEC.model_dump(),
        "working_size": 32,
        "weights_bytes": len(trap),
        "sha256": hashlib.sha256(trap).hexdigest(),
    }
    (folder / METADATA_NAME).write_text(json.dumps(metadata))
    with pytest.raises(ArtifactError, match="corrupt generator.safetensors"):
        load_generator(str(folder))
    # The command line says why, before any work.
    (tmp_path / "in").mkdir()
    torch.save({"weights": torch.zeros(1)}, tmp_path / "model.pt")
    assert (
        cli.main(["colorize", str(tmp_path / "in"), str(tmp_path / "out"), "--model", str(tmp_path / "model.pt")]) == 1
    )
    assert "never unpickles" in capsys.readouterr().err and not (tmp_path / "out").exists()
    assert not marker.exists()
