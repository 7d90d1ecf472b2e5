"""Reading the live workspace: one bulk listing per kind, and which live object is the managed one."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from provider.client import PrefectClient
from provider.engine.diff import changed_fields
from provider.state import State
from resources.base import Catalog, Known, LiveObject


def refresh(client: PrefectClient, names_by_kind: dict[str, set[str]], catalog: Catalog, parallelism: int = 8,
            known: dict[str, dict[str, Known]] | None = None) -> dict[str, dict[str, list[LiveObject]]]:
    """Live objects by kind and name (several where the kind allows a name twice): one bulk filter
    listing per kind, kinds read in parallel.

    `known`: by kind and name, what configuration and state say of the objects (see ResourceKind.read).
    """
    wanted = {kind: names for kind, names in names_by_kind.items() if names}
    if not wanted:
        return {}
    known = known or {}
    with ThreadPoolExecutor(max_workers=min(parallelism, len(wanted))) as pool:
        futures = {kind: pool.submit(catalog[kind].read, client, names, known.get(kind, {})) for kind, names in wanted.items()}
        found: dict[str, dict[str, list[LiveObject]]] = {}
        for kind, future in futures.items():
            by_name = found.setdefault(kind, {})
            for obj in future.result():
                by_name.setdefault(obj.name, []).append(obj)
        return found


@dataclass
class LiveView:
    """The live objects of a refresh, seen through the state: which one an address manages.

    Duplicate names are settled here, once per address: another object holding a managed
    unique name is a `conflict`; unmanaged objects sharing a repeatable name are `namesakes`.
    """

    live: dict[str, dict[str, list[LiveObject]]]
    state: State
    catalog: Catalog
    desired: dict[str, dict]  # address -> desired attributes (concealed)
    moved: dict[str, str]  # address -> the name it had before a `moved` entry
    conflicts: dict[str, LiveObject] = field(default_factory=dict)  # address -> another object with its name
    namesakes: dict[str, list[LiveObject]] = field(default_factory=dict)  # address -> unmanaged objects sharing it
    # address -> the deposed objects found (see Record.deposed), and the recorded object when it is
    # deposed by a create_before_destroy replacement whose create landed but was not recorded
    deposed: dict[str, list[LiveObject]] = field(default_factory=dict)
    replaced: set[str] = field(default_factory=set)  # addresses whose unrecorded replacement was found
    _found: dict[str, tuple[LiveObject | None, bool]] = field(default_factory=dict)

    def objects(self) -> list[tuple[str, LiveObject]]:
        """Every live object read, with its kind."""
        return [(kind, obj) for kind, named in self.live.items() for objects in named.values() for obj in objects]

    def find(self, key: str, kind: str, name: str) -> tuple[LiveObject | None, bool]:
        """The live object at an address, and whether it still has the name it had before a move."""
        if key not in self._found:
            obj = self._identify(key, kind, name)
            renamed = False
            record = self.state.resources.get(key)
            if obj is None and key in self.moved and record is not None:
                before = next((o for o in self.live.get(kind, {}).get(self.moved[key], []) if o.id == record.id), None)
                obj, renamed = before, before is not None
            self._found[key] = (obj, renamed)
        return self._found[key]

    def _identify(self, key: str, kind_name: str, name: str) -> LiveObject | None:
        """The managed object among the live ones with this name: the recorded id is its identity.

        Without a record, a kind with unique names offers its one object (adopted, or refused as
        unmanaged, by the planner); a kind with repeatable names only one that is provably this one.
        """
        kind = self.catalog[kind_name]
        candidates = self.live.get(kind_name, {}).get(name, [])
        record = self.state.resources.get(key)
        desired = self.desired.get(key)
        if record is not None:
            deposed = [o for o in candidates if o.id in record.deposed]
            candidates = [o for o in candidates if o.id not in record.deposed]
            mine = next((o for o in candidates if o.id == record.id), None) or next(
                (o for o in candidates if kind.same_object(o, record.attributes)), None)
            if mine is None and candidates and kind.server_owned(name):
                mine = candidates[0]  # the server made it anew with its parent: it is still the server's
            replacement = self._unrecorded_replacement(key, kind, candidates, mine, desired)
            if replacement is not None:
                # A create (a create_before_destroy replacement, or a re-creation) that landed but
                # was not recorded: it is the managed object now; the recorded one is deposed.
                deposed += [mine] if mine is not None else []
                mine = replacement
                self.replaced.add(key)
            if deposed:
                self.deposed[key] = deposed
        elif kind.unique_names:
            return candidates[0] if candidates else None
        else:
            mine = next((o for o in candidates if desired is not None and kind.same_object(o, desired)), None)
            if mine is None and key in self.state.pending and desired is not None:
                # An interrupted create may have landed: the namesake that is exactly what was asked.
                mine = next((o for o in candidates if not changed_fields(o.attributes, desired, kind.computed)), None)
        others = [o for o in candidates if o is not mine and o not in self.deposed.get(key, [])]
        if others and kind.unique_names:
            self.conflicts[key] = others[0]
        elif others:
            self.namesakes[key] = others
        return mine

    def _unrecorded_replacement(self, key: str, kind, candidates: list[LiveObject], mine: LiveObject | None,
                                desired: dict | None) -> LiveObject | None:
        """Where names repeat, a namesake exactly as desired while a create of this address is pending."""
        if kind.unique_names or key not in self.state.pending or desired is None:
            return None
        return next((o for o in candidates if o is not mine and not changed_fields(o.attributes, desired, kind.computed)), None)
