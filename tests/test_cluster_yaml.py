"""cluster.yaml is a valid Ray cluster launcher config (the autoscaler's own schema and checks)."""

from __future__ import annotations

import yaml

from tests.conftest import REPO_ROOT


def _load() -> dict:
    return yaml.safe_load((REPO_ROOT / "cluster.yaml").read_text())


def test_cluster_yaml_passes_the_autoscaler_schema():
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = prepare_config(_load())  # fills the AWS provider defaults as `ray up` does
    validate_config(config)  # jsonschema against ray/autoscaler/ray-schema.json + Ray's checks
    assert config["head_node_type"] == "head"


def test_cluster_has_a_cpu_only_head_and_autoscaling_gpu_and_cpu_workers():
    config = _load()
    node_types = config["available_node_types"]
    assert node_types["head"]["resources"] == {"CPU": 0}
    assert node_types["gpu_worker"]["node_config"]["InstanceType"].startswith("g5.")
    assert node_types["gpu_worker"]["min_workers"] == 0
    assert node_types["cpu_worker"]["min_workers"] == 0
    image = config["docker"]["image"]
    assert image.startswith("rayproject/ray:") and image.endswith("-py311-gpu") and "ray-ml" not in image
    import ray

    assert image.split(":")[1].startswith(ray.__version__), "cluster image should match the Ray version we test"
    assert any("pip install" in c and "archive-colorizer" in c for c in config["setup_commands"])
