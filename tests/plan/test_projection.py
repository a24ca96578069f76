"""The projection's arithmetic on known inputs, the shipped cluster.yaml, and the advice it gives."""

from __future__ import annotations

import math

import pytest

from archive_colorizer.errors import ConfigError
from archive_colorizer.plan.cluster import ClusterShape, NodeGroup, shape_from_flags, shape_from_yaml
from archive_colorizer.plan.projection import Assumptions, Workload, project
from tests.conftest import REPO_ROOT

NO_OVERHEAD = Assumptions(bandwidth_mb_per_s=1000.0, efficiency=1.0, background_load=0.0, driver_cpus=0.0)


def _work(**values) -> Workload:
    base = dict(
        images=1000,
        codec_seconds=0.4,
        model_cpu_seconds=0.1,
        model_gpu_seconds=0.001,
        requests_per_image=0.0,
        request_seconds=0.0,
        bytes_per_image=1e6,
        fixed_seconds=10.0,
    )
    return Workload(**(base | values))


def _with_head(*groups: NodeGroup) -> ClusterShape:
    return ClusterShape((NodeGroup("head", 1, 0, 0, price_per_hour=0.5), *groups), "test")


def test_1000_images_at_half_a_second_on_4_cores_take_250_seconds_plus_start_up():
    shape = _with_head(NodeGroup("worker", 1, 4, 0, price_per_hour=1.5))
    result = project(_work(), shape, NO_OVERHEAD, "fused")
    assert result.images_per_second == pytest.approx(8.0)  # 4 cores / 0.5 s per image
    assert result.wall_seconds == pytest.approx(135.0)  # 10 s start-up + 1000 / 8
    assert result.node_hours == pytest.approx(2 * 135 / 3600)  # the head is held too
    assert result.cost == pytest.approx((0.5 + 1.5) * 135 / 3600)
    assert result.bottleneck == "cpu"


def test_storage_waits_efficiency_background_load_and_the_driver_slow_a_fused_job():
    shape = shape_from_flags(2, 0, 1, None)  # no CPU-less head: the driver shares the node
    work = _work(requests_per_image=2.0, request_seconds=0.05)  # 0.4 + 0.1 + 0.1 s per image on a core
    result = project(work, shape, Assumptions(efficiency=0.8, background_load=2.0, driver_cpus=0.5), "fused")
    # (2 cores - 0.5 for the driver) * 2 / (2 + 2) share * 0.8 efficiency / 0.6 s = 1.0 image/s
    assert result.images_per_second == pytest.approx(1.0)
    assert result.wall_seconds == pytest.approx(1010.0)
    assert result.cost is None  # no price given


def test_split_stages_on_few_cpus_are_cpu_bound_and_say_how_many_cpu_nodes_to_add():
    shape = _with_head(NodeGroup("gpu_worker", 2, 4, 1), NodeGroup("cpu_worker", 1, 16, 0))
    work = _work(codec_seconds=0.04, bytes_per_image=1e5)
    result = project(work, shape, NO_OVERHEAD, "split")
    # CPUs: 2 * (4 - 1 for the actor) + 16 = 22 cores / 0.04 s = 550 images/s; GPUs: 2 / 0.001 s = 2000
    assert result.capacity["cpu"] == pytest.approx(550.0)
    assert result.capacity["gpu"] == pytest.approx(2000.0)
    assert result.bottleneck == "cpu" and result.images_per_second == pytest.approx(550.0)
    assert result.utilisation["gpu"] == pytest.approx(0.275)
    # 1450 images/s missing at 400 images/s per 16-CPU node: 4 more nodes; 0.55 GPUs would keep up: 1
    assert "GPUs idle 72%" in result.advice and "4 more cpu_worker nodes" in result.advice
    assert "(1 GPUs would keep up)" in result.advice


def test_a_slow_generator_makes_split_stages_gpu_bound_and_fused_stages_leave_gpus_idle():
    shape = _with_head(NodeGroup("gpu_worker", 2, 8, 1))
    work = _work(codec_seconds=0.04, model_gpu_seconds=0.1)
    split = project(work, shape, NO_OVERHEAD, "split")
    assert split.bottleneck == "gpu" and split.images_per_second == pytest.approx(20.0)
    assert split.utilisation["cpu"] == pytest.approx(20 / (14 / 0.04))
    fused = project(work, shape, NO_OVERHEAD, "fused")
    assert fused.images_per_second == pytest.approx(16 / (0.04 + 0.1))  # generator on CPUs beats 2 slow GPUs
    assert fused.utilisation["gpu"] == 0.0 and "GPUs idle 100%" in fused.advice


def test_large_images_on_a_thin_network_are_bandwidth_bound():
    shape = _with_head(NodeGroup("worker", 2, 64, 0))
    work = _work(codec_seconds=0.01, model_cpu_seconds=0.0, bytes_per_image=50e6)
    result = project(work, shape, Assumptions(bandwidth_mb_per_s=100.0, efficiency=1.0, driver_cpus=0.0), "fused")
    assert result.bottleneck == "network"
    assert result.images_per_second == pytest.approx(2 * 100e6 / 50e6)  # 4 images/s, CPUs could do 12800
    assert "bandwidth bound" in result.advice


def test_split_stages_without_gpus_are_refused():
    with pytest.raises(ValueError, match="need GPUs"):
        project(_work(), shape_from_flags(8, 0, 2, None), NO_OVERHEAD, "split")


def test_the_shipped_cluster_yaml_is_a_cpu_head_8_gpu_and_16_cpu_workers():
    shape = shape_from_yaml(str(REPO_ROOT / "cluster.yaml"), {"gpu_worker": 1.006}, 0.768)
    groups = {g.name: g for g in shape.groups}
    assert (groups["head"].count, groups["head"].cpus, groups["head"].gpus) == (1, 0, 0)
    assert (groups["gpu_worker"].count, groups["gpu_worker"].cpus, groups["gpu_worker"].gpus) == (8, 4, 1)
    assert (groups["cpu_worker"].count, groups["cpu_worker"].cpus) == (16, 16)
    assert groups["gpu_worker"].instance_type == "g5.xlarge"
    assert groups["gpu_worker"].price_per_hour == 1.006 and groups["cpu_worker"].price_per_hour == 0.768
    assert (shape.cpus, shape.gpus, shape.nodes) == (8 * 4 + 16 * 16, 8, 25)


def test_cluster_yaml_errors_name_the_node_type_or_price(tmp_path):
    with pytest.raises(ConfigError, match="not in .*: tpu_worker"):
        shape_from_yaml(str(REPO_ROOT / "cluster.yaml"), {"tpu_worker": 3.0})
    odd = tmp_path / "odd.yaml"
    odd.write_text(
        "max_workers: 2\navailable_node_types:\n  big:\n    max_workers: 2\n    node_config: {InstanceType: x9.huge}\n"
    )
    with pytest.raises(ConfigError, match=r"'big' has instance type 'x9.huge'.*resources"):
        shape_from_yaml(str(odd))
    odd.write_text(
        'max_workers: 5\navailable_node_types:\n  big:\n    max_workers: 9\n    resources: {"CPU": 3, "GPU": 2}\n'
    )
    shape = shape_from_yaml(str(odd))
    assert [(g.count, g.cpus, g.gpus) for g in shape.groups] == [(5, 3, 2)]  # capped by the file's max_workers
    (tmp_path / "not.yaml").write_text("a: 1\n")
    with pytest.raises(ConfigError, match="no available_node_types"):
        shape_from_yaml(str(tmp_path / "not.yaml"))
    assert not math.isnan(shape.cpus)


def test_tasks_waiting_on_storage_share_cores_and_the_advice_says_how_many_per_core():
    shape = _with_head(NodeGroup("worker", 1, 10, 0))
    work = _work(codec_seconds=0.03, model_cpu_seconds=0.0, requests_per_image=2.0, request_seconds=0.03)
    one = project(work, shape, NO_OVERHEAD, "fused")  # 1 CPU per task: 0.09 s per image on a core
    assert one.images_per_second == pytest.approx(10 / 0.09)
    assert "cores wait on storage 67%" in one.advice and "--cpus-per-task 0.3" in one.advice
    quarter = project(work, shape, Assumptions(efficiency=1.0, driver_cpus=0.0, cpus_per_task=0.25), "fused")
    assert quarter.images_per_second == pytest.approx(10 / 0.03)  # max(0.03, 0.09 * 0.25): compute bound again
    assert "storage" not in quarter.advice


def test_requests_in_flight_together_hide_storage_waits_and_the_advice_says_how_many():
    shape = _with_head(NodeGroup("worker", 1, 10, 0))
    work = _work(codec_seconds=0.03, model_cpu_seconds=0.0, requests_per_image=2.0, request_seconds=0.03)
    eight = project(work, shape, Assumptions(efficiency=1.0, driver_cpus=0.0, concurrent_requests=8), "fused")
    assert eight.images_per_second == pytest.approx(10 / 0.03)  # max(0.03, 0.06 / 8): the compute bounds it
    assert "storage" not in eight.advice
    slow = _work(codec_seconds=0.03, model_cpu_seconds=0.0, requests_per_image=2.0, request_seconds=0.1)
    two = project(slow, shape, Assumptions(efficiency=1.0, driver_cpus=0.0, concurrent_requests=2), "fused")
    assert two.images_per_second == pytest.approx(10 / 0.1)  # 0.2 s of requests per image, 2 at a time
    assert "cores wait on storage 70%" in two.advice and "--concurrent-requests 7 keeps" in two.advice
    far = _work(codec_seconds=0.001, model_cpu_seconds=0.0, requests_per_image=2.0, request_seconds=0.1)
    many = project(far, shape, Assumptions(efficiency=1.0, driver_cpus=0.0, concurrent_requests=8), "fused")
    assert "even --concurrent-requests 64 leaves the cores waiting" in many.advice
