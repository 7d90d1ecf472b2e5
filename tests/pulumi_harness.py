"""Pulumi's runtime on mocks, with a mock engine that really calls our dynamic providers.

What the Pulumi engine does with a new dynamic resource on `pulumi up` (deserialize the provider
from the resource's inputs, hand it the inputs without their secret wrapping, call check and
create, mark secret inputs' outputs secret), so a program's resources really land on the server.
Only the Pulumi CLI cannot run here.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import dill
import pulumi
from pulumi.runtime import Mocks, MockResourceArgs, rpc
from pulumi.runtime.config import set_all_config
from pulumi.runtime.mocks import MockMonitor

from provider.pulumi import KindProvider


def plain(value: Any) -> Any:
    """A value without Pulumi's secret wrapping, as the engine hands inputs to a dynamic provider."""
    value = rpc.unwrap_rpc_secret(value)
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    return value


class Engine(Mocks):
    """What the Pulumi engine does with a new dynamic resource on `pulumi up`."""

    def __init__(self) -> None:
        self.created: list[tuple[str, KindProvider, str, dict[str, Any]]] = []  # (type, provider, id, outputs)
        self.inputs: dict[str, dict[str, Any]] = {}  # resource name -> inputs as the provider got them
        # (resource name, inputs) of each `created` entry, at the same index (names repeat across types)
        self.named: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()  # resources are registered concurrently

    def new_resource(self, args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
        inputs = plain(args.inputs)
        provider = dill.loads(base64.b64decode(inputs["__provider"]))
        checked = provider.check({}, inputs)
        assert checked.failures == [], checked.failures
        result = provider.create(checked.inputs)
        with self._lock:
            self.created.append((args.typ, provider, result.id, result.outs))
            self.named.append((args.name, inputs))
            self.inputs[args.name] = inputs
        secret = {key for key, value in args.inputs.items() if rpc.is_rpc_secret(value)}
        return result.id, {key: rpc.wrap_rpc_secret(v) if key in secret else v for key, v in result.outs.items()}

    def call(self, args):
        raise NotImplementedError


class Monitor(MockMonitor):
    """The mock monitor, also recording each resource's additional secret outputs."""

    def __init__(self, mocks: Mocks):
        super().__init__(mocks)
        self.secret_outputs: dict[str, list[str]] = {}

    def RegisterResource(self, request):
        self.secret_outputs[request.name] = list(request.additionalSecretOutputs)
        return super().RegisterResource(request)


@contextmanager
def mocked_pulumi(project: str, stack: str, config: dict[str, str], secret_keys: list[str] = ()) -> Iterator[tuple[Engine, Monitor]]:
    """Pulumi's runtime on the mock engine for PROJECT/STACK with the stack config `config`."""
    set_all_config(config, list(secret_keys))
    mocks = Engine()
    monitor = Monitor(mocks)
    pulumi.runtime.set_mocks(mocks, project=project, stack=stack, preview=False, monitor=monitor)
    try:
        yield mocks, monitor
    finally:
        set_all_config({})
