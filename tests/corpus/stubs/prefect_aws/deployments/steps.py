"""`prefect_aws.deployments.steps` without S3: the outputs of the real steps ({bucket, folder})."""

from __future__ import annotations

from typing import Any


def push_to_s3(
    bucket: str,
    folder: str,
    credentials: dict[str, Any] | None = None,
    client_parameters: dict[str, Any] | None = None,
    ignore_file: str | None = ".prefectignore",
) -> dict[str, str]:
    return {"bucket": bucket, "folder": folder}


def pull_from_s3(
    bucket: str,
    folder: str,
    credentials: dict[str, Any] | None = None,
    client_parameters: dict[str, Any] | None = None,
) -> dict[str, str]:
    return {"bucket": bucket, "folder": folder, "directory": folder}
