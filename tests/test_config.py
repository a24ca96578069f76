"""Job configs: YAML file + overrides, validation errors naming the setting, redaction."""

from __future__ import annotations

from typing import Any, Literal

import pytest
import yaml
from pydantic import Field

from archive_colorizer.config import JobConfig, redact
from archive_colorizer.errors import ConfigError


class ExampleConfig(JobConfig):
    input: str = Field(description="input URL", json_schema_extra={"cli": "positional"})
    size: int = Field(286, ge=16, description="shorter side in pixels")
    val_fraction: float = Field(0.02, ge=0, le=1, description="validation fraction")
    gpu: bool = Field(False, description="use GPUs")
    gan_mode: Literal["vanilla", "lsgan"] = Field("vanilla", description="GAN loss")
    storage_options: dict[str, Any] = Field(
        default_factory=dict, description="fsspec options", json_schema_extra={"cli_name": "storage-option"}
    )


def test_file_values_are_overridden_by_command_line_values(tmp_path):
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump({"input": "photos/", "size": 300, "val-fraction": 0.1}))
    config = ExampleConfig.load(path, {"size": 320})
    assert (config.input, config.size, config.val_fraction) == ("photos/", 320, 0.1)


def test_invalid_values_name_the_setting_and_the_file(tmp_path):
    path = tmp_path / "job.yaml"
    path.write_text("input: x\nsize: 3\n")
    with pytest.raises(ConfigError, match=r"job.yaml.*size") as info:
        ExampleConfig.load(path)
    assert "greater than or equal to 16" in str(info.value)
    with pytest.raises(ConfigError, match="gan_mode"):
        ExampleConfig.load(None, {"input": "x", "gan_mode": "wgan"})
    with pytest.raises(ConfigError, match="colour"):
        ExampleConfig.load(None, {"input": "x", "colour": 1})


def test_missing_or_malformed_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        ExampleConfig.load(tmp_path / "nope.yaml")
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="mapping"):
        ExampleConfig.load(tmp_path / "list.yaml")


def test_saved_config_redacts_secrets_and_loads_back(tmp_path):
    config = ExampleConfig(
        input="s3://b/p",
        storage_options={"key": "AKIAEXAMPLE", "secret": "s3cr3t", "endpoint_url": "http://127.0.0.1:9000"},
    )
    config.save(str(tmp_path / "config.yaml"))
    text = (tmp_path / "config.yaml").read_text()
    assert "AKIAEXAMPLE" not in text and "s3cr3t" not in text
    assert "http://127.0.0.1:9000" in text
    again = ExampleConfig.load(tmp_path / "config.yaml")
    assert again.storage_options["endpoint_url"] == "http://127.0.0.1:9000"
    assert again.size == config.size


def test_redact_covers_nested_and_common_names():
    data = {"a": {"aws_secret_access_key": "x", "token": "t", "client_kwargs": {"aws_session_token": "s"}}, "size": 3}
    assert redact(data) == {
        "a": {"aws_secret_access_key": "***", "token": "***", "client_kwargs": {"aws_session_token": "***"}},
        "size": 3,
    }
