"""deploy/: the KubeRay RayJob runs a real entrypoint with valid options on the image the Dockerfile builds."""

from __future__ import annotations

import re
import shlex

import ray
import yaml

from archive_colorizer import cli
from archive_colorizer.train.config import TrainConfig
from tests.conftest import REPO_ROOT

PROJECT_IN_IMAGE = "/home/ray/archive-colorizer/"


def _rayjob() -> dict:
    return yaml.safe_load((REPO_ROOT / "deploy" / "rayjob.yaml").read_text())


def _containers(spec: dict) -> list[dict]:
    groups = [spec["headGroupSpec"], *spec["workerGroupSpecs"]]
    return [container for group in groups for container in group["template"]["spec"]["containers"]]


def test_rayjob_entrypoint_is_a_job_script_with_valid_train_options():
    job = _rayjob()
    assert (job["apiVersion"], job["kind"]) == ("ray.io/v1", "RayJob")
    python, script, *args = shlex.split(job["spec"]["entrypoint"])
    assert python == "python" and script.startswith(PROJECT_IN_IMAGE)
    assert (REPO_ROOT / script.removeprefix(PROJECT_IN_IMAGE)).is_file(), script
    namespace = cli.build_parser().parse_args([script.rsplit("/", 1)[-1].removesuffix(".py"), *args])
    config = cli.config_from_args(TrainConfig, namespace)
    assert config.gpu and config.data.startswith("s3://") and config.run.startswith("s3://")


def test_rayjob_cluster_has_a_cpu_only_head_and_autoscaling_gpu_and_cpu_groups():
    spec = _rayjob()["spec"]["rayClusterSpec"]
    assert spec["rayVersion"] == ray.__version__ and spec["enableInTreeAutoscaling"] is True
    assert spec["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0"
    groups = {group["groupName"]: group for group in spec["workerGroupSpecs"]}
    assert groups["gpu"]["minReplicas"] == 0 and groups["cpu"]["minReplicas"] == 0
    gpu_limits = groups["gpu"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert gpu_limits["nvidia.com/gpu"] == "1"
    assert "nvidia.com/gpu" not in groups["cpu"]["template"]["spec"]["containers"][0]["resources"]["limits"]


def test_every_pod_runs_the_image_built_on_the_cluster_yaml_base_image():
    images = {container["image"] for container in _containers(_rayjob()["spec"]["rayClusterSpec"])}
    assert len(images) == 1
    dockerfile = (REPO_ROOT / "deploy" / "Dockerfile").read_text()
    assert f"-t {images.pop()} ." in dockerfile
    base = re.search(r"^FROM (\S+)", dockerfile, re.M).group(1)
    cluster = yaml.safe_load((REPO_ROOT / "cluster.yaml").read_text())
    assert base == cluster["docker"]["image"]
    assert f"pip install --no-cache-dir -e {PROJECT_IN_IMAGE.rstrip('/')}" in dockerfile


def test_every_node_installs_the_one_torch_build_ci_tests():
    """cluster.yaml's setup, the Dockerfile and the Makefile pin the same torch release, exactly."""
    makefile = (REPO_ROOT / "Makefile").read_text()
    tested = re.search(r"^TORCH_SPEC \?= (torch==[\d.]+)$", makefile, re.M).group(1)
    cluster = yaml.safe_load((REPO_ROOT / "cluster.yaml").read_text())
    setup = [c for c in cluster["setup_commands"] if "torch" in c]
    dockerfile = (REPO_ROOT / "deploy" / "Dockerfile").read_text()
    assert setup == [f'pip install --quiet "{tested}"']  # no --upgrade, no range: no drift between nodes
    assert re.findall(r'"(torch[^"]*)"', dockerfile) == [tested]


def test_a_cluster_run_restarts_from_its_checkpoint_after_a_lost_node_by_default():
    # Spot nodes: the first reclaim must not end the run (cluster.yaml's gpu_worker is spot).
    assert TrainConfig(data="s3://b/shards", run="s3://b/runs/a").max_failures == 3
    assert TrainConfig(data="d", run="r", max_failures=0).max_failures == 0  # fail at the first, if asked
