"""Resource checks: work the cluster could never schedule is resized or refused at once, naming the options."""

from __future__ import annotations

import pytest

from archive_colorizer.colorize.pipeline import PoolSettings
from archive_colorizer.errors import ConfigError
from archive_colorizer.resources import ClusterCPUs, check_colorize, fit_train_workers

TWO = ClusterCPUs(2.0, 2.0)


def test_two_default_workers_on_two_cpus_are_sized_to_half_a_cpu_each_and_say_so(capsys):
    assert fit_train_workers(2, 1.0, TWO, explicit=False) == 0.5
    line = capsys.readouterr().err.strip()
    assert line.count("\n") == 0 and "--workers 2" in line and "using --cpus-per-worker 0.5" in line, line


def test_an_explicit_cpus_per_worker_that_takes_every_cpu_is_refused_naming_the_options():
    with pytest.raises(ConfigError) as raised:
        fit_train_workers(2, 1.0, TWO, explicit=True)
    message = str(raised.value)
    assert "--workers 2" in message and "--cpus-per-worker 1" in message and "2 CPUs" in message, message
    assert "at most 0.5 here" in message


def test_workers_that_fit_keep_their_cpus_and_too_many_workers_are_refused(capsys):
    assert fit_train_workers(1, 1.0, TWO, explicit=True) == 1.0
    assert fit_train_workers(4, 1.0, ClusterCPUs(2.0, 2.0), explicit=False) == 0.25
    with pytest.raises(ConfigError, match="--workers 8"):
        fit_train_workers(8, 1.0, TWO, explicit=False)
    assert fit_train_workers(0, 4.0, TWO, explicit=True) == 4.0  # local mode reserves nothing


def test_the_autoscalers_maximum_counts_not_only_the_nodes_of_now():
    assert fit_train_workers(4, 1.0, ClusterCPUs(2.0, 16.0), explicit=True) == 1.0


def test_colorize_actors_that_need_more_cpus_than_the_cluster_are_refused():
    split = PoolSettings(3, 3, 16, 16, 0.5, 1.0, False, fused=False)
    with pytest.raises(ConfigError) as raised:
        check_colorize(split, TWO)
    message = str(raised.value)
    assert "3.5 CPUs" in message and "--cpus-per-actor" in message and "2 CPUs" in message, message
    fused = PoolSettings(1, 1, 16, 16, 1.0, 1.0, False, fused=True)
    assert check_colorize(fused, TWO) is fused
