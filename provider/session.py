"""The workflow every front end shares (the CLI, the Pulumi providers, tests): lock, read state,
apply `moved`, read the data sources `${data...}` expressions need, plan, check a saved plan,
restore its secrets, apply with a journaled writer.

A session works on one configuration and one state backend, and opens a client to the Prefect API
(`connect`) only while it reads or writes the workspace. It never prints: front ends render plans
and results and report progress through `on_event`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from provider.connection import workspace_client
from provider.engine import (
    ApplyResult,
    PlanOptions,
    apply_moves,
    apply_plan,
    declared_resource,
    desired_attributes,
    import_object,
    make_plan,
    read_data,
    refresh,
)
from provider.errors import ProviderError, StateError
from provider.state import Record, State, StateWriter
from resources import CATALOG, KINDS
from resources.base import Address, ServerDefaults

if TYPE_CHECKING:
    from provider.client import PrefectClient
    from provider.config import Configuration
    from provider.engine import Event
    from provider.plan import Plan
    from provider.state import Backend, LockInfo

Mode = Literal["normal", "destroy", "refresh-only"]
Connect = Callable[[], AbstractContextManager["PrefectClient"]]


class Session:
    """One configuration (None: only state is used) against one state backend and one workspace."""

    def __init__(self, config: Configuration | None, backend: Backend, connect: Connect):
        self.config = config
        self.backend = backend
        self._connect_to_api_url = connect
        # The state the last plan was made against (moves applied in memory); `apply` writes it.
        self.state: State | None = None

    def with_config(self, config: Configuration) -> Session:
        """A session on another configuration (e.g. one pool's infrastructure) with this backend,
        which has read the state the other session writes."""
        return Session(config, self.backend, self._connect_to_api_url)

    @contextmanager
    def connect(self) -> Iterator[PrefectClient]:
        """A client to the configuration's workspace: the API URL's, or the one its `workspace:`
        setting names in the account of the API URL."""
        setting = self.config.workspace if self.config else None
        with self._connect_to_api_url() as client:
            if setting is None:
                yield client
                return
            declared = next((r.location for a, r in self.config.resources.items()
                             if a.kind == "workspaces" and r.spec.handle == setting.handle), None)
            with workspace_client(client, setting, declared) as chosen:
                yield chosen

    def check_workspace(self, state: State, client: PrefectClient) -> None:
        """Refuse a state applied to another Cloud workspace than the one `client` talks to (it
        would plan to create everything again there); with `workspace:`, record the one it is."""
        talking_to = client.connection.workspace_id
        if state.workspace and state.workspace != talking_to:
            setting = self.config.workspace if self.config else None
            how = f"`workspace: {setting.handle}` ({setting.location}) resolves to" if setting else "the API URL points into"
            raise StateError(
                f"the state {self.backend.describe()} manages the objects of Cloud workspace {state.workspace}, and "
                f"{how} {'workspace ' + talking_to if talking_to else 'no Cloud workspace'} "
                f"({client.connection.display_url}): refusing to work in another workspace than the state's. "
                "Point the configuration at the state's workspace, or give this workspace its own configuration and state"
            )
        if self.config is not None and self.config.workspace is not None:
            state.workspace = talking_to

    def resolved_config(self) -> Configuration | None:
        """The configuration with its `${data...}` expressions evaluated (the data sources read now,
        if any need to be), e.g. before taking part of it."""
        if self.config is not None and self.config.deferred:
            with self.connect() as client:
                self._read_data(client)
        return self.config

    def _read_data(self, client: PrefectClient) -> None:
        """Read the data sources `${data...}` expressions use, and the configuration again with them."""
        if self.config is not None and self.config.deferred:
            self.config = self.config.with_data(read_data(client, self.config))

    def locked(self, operation: str, timeout: float = 0.0) -> AbstractContextManager[LockInfo]:
        return self.backend.lock(operation, timeout)

    def current_state(self) -> State:
        state = self.backend.read()
        if state is None:
            raise StateError(f"no state at {self.backend.describe()}")
        return state

    # --- plan and apply ----------------------------------------------------------------------

    def plan(self, mode: Mode = "normal", targets: Sequence[str] = (), replace: Sequence[str] = (), *,
             state: State | None = None) -> Plan:
        """Read the state (unless given), apply the configuration's `moved` entries to it, plan."""
        if state is None:
            state = self.backend.read()
        new_state = state is None
        state = state or State()
        moved = apply_moves(self.config, state)
        with self.connect() as client:
            self.check_workspace(state, client)
            if mode != "destroy":
                self._read_data(client)
            options = PlanOptions(mode, list(targets), list(replace), moved)
            plan = make_plan(self.config, state, client, options, new_state=new_state)
        plan.moved = {new: f"{new.split('.', 1)[0]}.{old}" for new, old in moved.items()}
        plan.warnings += [f"{old} has moved to {new}" for new, old in plan.moved.items()]
        if self.config is not None and self.config.workspace is not None:
            plan.warnings.insert(0, f"workspace {self.config.workspace.handle!r} ({client.connection.display_url})")
        self.state = state
        return plan

    def apply(self, plan: Plan, parallelism: int = 10, on_event: Event | None = None) -> ApplyResult:
        """Apply a plan made (or checked, `load_saved`) by this session; every completed step is
        persisted at once, and the plan's moves first."""
        if self.state is None:
            raise ProviderError("apply needs a plan made or checked by this session")
        with self.connect() as client:
            self.check_workspace(self.state, client)
            writer = StateWriter(self.backend, self.state)
            for new, old in plan.moved.items():
                writer.move(old, new)  # already renamed in memory (a no-op there); this makes it durable
            return apply_plan(plan, client, writer, parallelism=parallelism, on_event=on_event)

    def load_saved(self, saved: Plan, source: Path) -> Plan:
        """A saved plan made ready to apply: refused when the state changed since it was made; its
        secrets (saved as fingerprints only) taken from the configuration again."""
        state = self.backend.read()
        current = (state.lineage, state.serial) if state else (saved.lineage, None)
        if current != (saved.lineage, saved.serial):
            raise ProviderError(
                f"the saved plan {source} is stale: the state changed since it was made "
                f"(planned against serial {saved.serial}, the state is now at {current[1]}); run plan again"
            )
        self.state = state or State(lineage=saved.lineage)
        if any(c.sensitive for c in saved.pending):
            self._restore_secrets(saved)
        return saved

    def _restore_secrets(self, saved: Plan) -> None:
        wanted = {c.address for c in saved.pending if c.sensitive and c.after is not None}
        with self.connect() as client:
            self._read_data(client)
            resources = self.config.resources if self.config else {}
            desired = desired_attributes(resources, ServerDefaults(client), saved.lineage, only=wanted)
        for change in saved.pending:
            if change.address not in wanted:
                continue
            if desired.attributes.get(change.address) != change.after:
                raise ProviderError(
                    f"{change.address}: the configuration or a secret changed since the plan was made; run plan again"
                )
            saved.secrets[change.address] = desired.secrets[change.address]

    # --- adoption ----------------------------------------------------------------------------

    def existing(self, addresses: Iterable[Address] | None = None, namesakes: bool = False) -> dict[Address, str]:
        """Address -> id of declared objects (all, or `addresses`) that exist on the server but are
        not in state: what a plan would refuse as unmanaged. Objects the server owns are left out,
        and so are those of kinds that allow a name twice (a namesake is not this object) unless
        `namesakes` asks for them (adopting by name): then the one object of the name, and an error
        when there are several."""
        state = self.backend.read() or State()
        resources = self.config.resources if self.config else {}
        names: dict[str, set[str]] = {}
        for address in resources if addresses is None else addresses:
            kind = KINDS[address.kind]
            if str(address) not in state.resources and (kind.unique_names or namesakes) and not kind.server_owned(address.name):
                names.setdefault(address.kind, set()).add(address.name)
        with self.connect() as client:
            live = refresh(client, names, CATALOG)
        found = {}
        for kind, by_name in live.items():
            for name, objects in by_name.items():
                if len(objects) > 1:
                    ids = ", ".join(o.id for o in objects)
                    raise ProviderError(f"{CATALOG.address(kind, name)}: several objects on the server have this name (ids {ids}): adopting cannot tell which")
                found[CATALOG.address(kind, name)] = objects[0].id
        return found

    def import_(self, address: Address, id_or_name: str, lock_timeout: float = 0.0) -> Record:
        """Take an existing object into state for its declared resource (as `prefect-provider import`)."""
        declared_resource(self.config, address)  # before anything is read or locked
        with self.locked("import", lock_timeout):
            state = self.backend.read() or State()
            with self.connect() as client:
                self.check_workspace(state, client)
                self._read_data(client)
                record = import_object(self.config, state, client, address, id_or_name)
            state.resources[str(address)] = record
            state.serial += 1
            self.backend.write(state)
        return record

    # --- state edits -------------------------------------------------------------------------

    def edit_state(self, operation: str, lock_timeout: float, edit: Callable[[State], None]) -> State:
        """Under the lock: change the state in place with `edit`, write it as the next serial."""
        with self.locked(operation, lock_timeout):
            state = self.current_state()
            edit(state)
            state.serial += 1
            self.backend.write(state)
        return state
