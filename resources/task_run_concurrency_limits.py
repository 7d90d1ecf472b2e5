"""task_run_concurrency_limits (TAG): how many task runs carrying a tag may run at once.

Written through Prefect's v1 API (`/concurrency_limits/`, by tag), which keeps each one as the
global limit `tag:TAG`; read in bulk from that v2 listing, which pages correctly (the v1 listing
slices a merge of both tables, so its pages can miss tag limits behind many global ones).

Only `concurrency_limit` is managed. The slots task runs hold are the server's running state:
they never cause a change and are never reset; a changed limit is written in place (the v1 create
updates an existing tag's limit), keeping the slots held, where Terraform re-creates the limit.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, NonNegativeInt

from resources.base import ApplyContext, LiveObject, ResourceKind, Spec, wanted

TAG_PREFIX = "tag:"


class TaskRunConcurrencyLimitSpec(Spec):
    concurrency_limit: NonNegativeInt = Field(
        description="How many task runs with this tag may run at once (0: none may run)."
    )


class TaskRunConcurrencyLimits(ResourceKind):
    kind = "task_run_concurrency_limits"
    spec = TaskRunConcurrencyLimitSpec
    identity = "TAG"
    identity_inputs = ("tag",)  # as Terraform's prefect_task_run_concurrency_limit names it

    def check_name(self, name: str) -> None:
        if not name.strip():
            raise ValueError("a tag must not be empty")
        if "/" in name:
            raise ValueError(f"tag {name!r} must not contain /, which the API's routes by tag cannot take")

    def desired(self, name: str, spec: TaskRunConcurrencyLimitSpec, defaults) -> dict[str, Any]:
        return {"concurrency_limit": spec.concurrency_limit}

    def list(self, client, names: set[str] | None) -> list[LiveObject]:
        # The v2 filter endpoint takes no criteria: it pages through every limit.
        return [
            LiveObject(id=limit["id"], name=tag, attributes={"concurrency_limit": limit["limit"]})
            for limit in client.filter("/v2/concurrency_limits/filter")
            if limit["name"].startswith(TAG_PREFIX) and wanted(tag := limit["name"].removeprefix(TAG_PREFIX), names)
        ]

    def create(self, client, name: str, attributes: dict[str, Any], ctx: ApplyContext) -> str:
        return client.post("/concurrency_limits/", {"tag": name, **attributes})["id"]

    def update(self, client, obj_id: str, name: str, attributes: dict[str, Any], before: dict[str, Any], ctx: ApplyContext) -> None:
        # The v1 API has no update: its create sets the limit of an existing tag, slots untouched.
        client.post("/concurrency_limits/", {"tag": name, **attributes})

    def delete(self, client, obj_id: str, name: str) -> None:
        client.delete(f"/concurrency_limits/{obj_id}")  # by id: the limit this state manages
