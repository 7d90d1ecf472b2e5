"""`prefect_docker.deployments.steps` without Docker: the outputs of the real steps.

The real `build_docker_image` returns {image_name, tag, image, image_id, additional_tags} and
`push_docker_image` returns {image_name, tag, image, additional_tags}. Only `image_id` (from the
Docker daemon) and a missing `tag` (a timestamp) cannot be reproduced: the id is derived from the
image reference and a missing tag is "latest", so the corpus can pass the same values to the tool.
"""

from __future__ import annotations

import hashlib
from typing import Any


def image_id(image_name: str, tag: str) -> str:
    return "sha256:" + hashlib.sha256(f"{image_name}:{tag}".encode()).hexdigest()


def build_docker_image(
    image_name: str,
    dockerfile: str = "Dockerfile",
    tag: str | None = None,
    additional_tags: list[str] | None = None,
    ignore_cache: bool = False,
    **build_kwargs: Any,
) -> dict[str, Any]:
    tag = tag or "latest"
    return {
        "image_name": image_name,
        "tag": tag,
        "image": f"{image_name}:{tag}",
        "image_id": image_id(image_name, tag),
        "additional_tags": additional_tags or [],
    }


def push_docker_image(
    image_name: str,
    tag: str | None = None,
    credentials: dict[str, Any] | None = None,
    additional_tags: list[str] | None = None,
    ignore_cache: bool = False,
) -> dict[str, Any]:
    return {
        "image_name": image_name,
        "tag": tag,
        "image": f"{image_name}:{tag}",
        "additional_tags": additional_tags or [],
    }
