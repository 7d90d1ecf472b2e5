"""work_queues (POOL/QUEUE): prioritized queues of a work pool.

The pool's `default` queue belongs to the server: declaring it adopts and updates it, and it is
never deleted. The server shifts other queues' priorities when a priority is taken, so queues of
one pool are written one at a time, in ascending priority, which leaves every declared priority
exactly as written.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from pydantic import NonNegativeInt, PositiveInt

from resources.base import Address, ApplyContext, LiveObject, ResourceKind, Spec, name_filter, wanted
from resources.names import check_object_name, split_pair

DEFAULT_QUEUE = "default"


class QueueSpec(Spec):
    priority: PositiveInt | None = None
    concurrency_limit: NonNegativeInt | None = None
    description: str | None = None
    paused: bool = False


class WorkQueues(ResourceKind):
    kind = "work_queues"
    spec = QueueSpec
    identity = "POOL/QUEUE"
    identity_inputs = ("work_pool", "name")
    deleted_with_parent = True
    renamable = True  # within its pool
    # Without one, the server gives a new queue the pool's next free priority.
    server_filled = frozenset({"priority"})

    def check_name(self, name: str) -> None:
        pool, queue = split_pair(name, self.identity)
        check_object_name(pool, "work pool name")
        check_object_name(queue, "work queue name")

    def references(self, name: str, spec: QueueSpec) -> list[Address]:
        return [Address("work_pools", name.split("/", 1)[0])]

    def ordering(self, specs: Mapping[str, QueueSpec]) -> list[tuple[str, str]]:
        by_pool: dict[str, list[tuple[int, str]]] = {}
        for name, spec in specs.items():
            if spec.priority is not None:
                by_pool.setdefault(name.split("/", 1)[0], []).append((spec.priority, name))
        pairs = []
        for queues in by_pool.values():
            ordered = [name for _, name in sorted(queues)]
            pairs += list(zip(ordered[1:], ordered[:-1]))
        return pairs

    def server_owned(self, name: str) -> bool:
        return name.split("/", 1)[1] == DEFAULT_QUEUE

    def desired(self, name: str, spec: QueueSpec, defaults) -> dict[str, Any]:
        return {
            "priority": spec.priority,
            "concurrency_limit": spec.concurrency_limit,
            "description": spec.description,
            "paused": spec.paused,
        }

    def list(self, client, names: set[str] | None) -> list[LiveObject]:
        body = name_filter("work_queues", None if names is None else {name.split("/", 1)[1] for name in names})
        found = []
        for queue in client.filter("/work_queues/filter", body):
            name = f"{queue.get('work_pool_name')}/{queue['name']}"
            if queue.get("work_pool_name") and wanted(name, names):
                found.append(
                    LiveObject(
                        id=queue["id"],
                        name=name,
                        attributes={
                            "priority": queue.get("priority"),
                            "concurrency_limit": queue.get("concurrency_limit"),
                            # The server stores a missing description as "".
                            "description": queue.get("description") or None,
                            "paused": queue.get("is_paused", False),
                        },
                    )
                )
        return found

    @staticmethod
    def path(name: str) -> str:
        pool, queue = name.split("/", 1)
        return f"/work_pools/{quote(pool, safe='')}/queues/{quote(queue, safe='')}"

    @staticmethod
    def payload(attributes: dict[str, Any], before: dict[str, Any] | None = None) -> dict[str, Any]:
        body = {
            "description": attributes["description"] or "",  # the column is NOT NULL
            "is_paused": attributes["paused"],
            "concurrency_limit": attributes["concurrency_limit"],
        }
        # The server assigns the next free priority when none is given; it cannot be unset.
        # Re-sending an unchanged priority makes it reshuffle the pool's queues (and conflict).
        if attributes["priority"] is not None and attributes["priority"] != (before or {}).get("priority"):
            body["priority"] = attributes["priority"]
        return body

    def create(self, client, name: str, attributes: dict[str, Any], ctx: ApplyContext) -> str:
        pool, queue = name.split("/", 1)
        if self.server_owned(name):
            # The server made it with the pool: adopt it and make it match.
            live = client.get(self.path(name))
            self.update(client, live["id"], name, attributes, {"priority": live.get("priority")}, ctx)
            return live["id"]
        body = {"name": queue, **self.payload(attributes)}
        return client.post(f"/work_pools/{quote(pool, safe='')}/queues", body)["id"]

    def update(self, client, obj_id: str, name: str, attributes: dict[str, Any], before: dict[str, Any], ctx: ApplyContext) -> None:
        client.patch(self.path(name), self.payload(attributes, before))

    def rename(self, client, obj_id: str, new_name: str, attributes: dict[str, Any], ctx: ApplyContext) -> None:
        client.patch(f"/work_queues/{obj_id}", {"name": new_name.split("/", 1)[1]})

    def delete(self, client, obj_id: str, name: str) -> None:
        client.delete(f"/work_queues/{obj_id}")  # by id: only the managed queue, whatever holds its name
