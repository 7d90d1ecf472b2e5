"""worker_metadata: what the server knows of each worker type, read-only (`data:` only).

Terraform's `prefect_worker_metadata` data source: the default base job template of every worker
type the server's collections describe. Here one data source per type, named as the type is
(`ecs`, `kubernetes`, `process`, ...; push and managed pool types use their worker type's template):

    data: {worker_metadata: {ecs: {}}}
    ... base_job_template: ${data.worker_metadata.ecs.base_job_template}
"""

from __future__ import annotations

from typing import Any

from resources.base import LiveObject, NoOptions, ResourceKind, wanted


class WorkerMetadata(ResourceKind):
    kind = "worker_metadata"
    spec = NoOptions
    identity = "WORKER_TYPE"
    data_only = True

    def list(self, client, names: set[str] | None) -> list[LiveObject]:
        found = []
        for collection in client.get("/collections/views/aggregate-worker-metadata").values():
            for worker in collection.values():
                if wanted(worker.get("type", ""), names):
                    found.append(LiveObject(id=f"worker-type:{worker['type']}", name=worker["type"],
                                            attributes=_attributes(worker)))
        return found


def _attributes(worker: dict[str, Any]) -> dict[str, Any]:
    return {
        "base_job_template": worker.get("default_base_job_configuration") or {},
        "display_name": worker.get("display_name"),
        "description": worker.get("description"),
        "documentation_url": worker.get("documentation_url"),
        "install_command": worker.get("install_command"),
        "is_beta": worker.get("is_beta"),
        "logo_url": worker.get("logo_url"),
    }
