"""Settings of ``archive-colorizer verify``: check the C2PA manifests of colorized files."""

from __future__ import annotations

from pydantic import Field, field_validator

from archive_colorizer.config import StorageOptions, dotted_suffixes


class VerifyConfig(StorageOptions):
    """Settings of ``archive-colorizer verify``: check C2PA manifests (:mod:`archive_colorizer.verify`)."""

    paths: list[str] = Field(
        description="files, folders (every image below them, recursively) or URLs to check",
        json_schema_extra={"cli": "positional"},
    )
    trust_anchors: str | None = Field(
        None,
        description="PEM file or URL of root certificates: a valid manifest whose signer chains to one is reported "
        "trusted; none: valid at most",
    )
    extensions: list[str] = Field(
        default_factory=lambda: [".jpg", ".jpeg", ".png", ".tif", ".tiff"],
        description="file name suffixes checked inside a folder (case-insensitive); files named directly are always "
        "checked",
    )
    json_output: bool = Field(False, description="print one JSON object per file instead of a table")

    @field_validator("extensions")
    @classmethod
    def _normalise_extensions(cls, value: list[str]) -> list[str]:
        return dotted_suffixes(value)
