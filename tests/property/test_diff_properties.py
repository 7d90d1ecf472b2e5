"""The diff names exactly the top-level attributes whose JSON values differ, and secrets survive
concealing and revealing unchanged.

Equality is JSON's: 1 and 1.0 are the same number (the server may answer either), but true is
not 1, "1" is not 1, and a missing attribute is not a null one.
"""

from __future__ import annotations

from typing import Any

from hypothesis import assume, given
from hypothesis import strategies as st

from provider.engine import changed_fields
from provider.secrets import PREFIX, conceal, fingerprint, reveal

MISSING = object()
keys = st.text(alphabet="abcdefgh_", min_size=1, max_size=4)  # no dots: secret paths are dotted
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 3), st.integers(), st.floats(allow_nan=False),
    st.integers(-3, 3).map(float), st.sampled_from(["", "a", "1", "true", PREFIX + "x"]), st.text(max_size=5),
)
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3),
                           max_leaves=12)
attributes = st.dictionaries(keys, json_values, max_size=5)


def same(a: Any, b: Any) -> bool:
    """The reference: equal as JSON values."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def differing(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    return sorted(k for k in before.keys() | after.keys() if not same(before.get(k, MISSING), after.get(k, MISSING)))


def numbers_as_floats(value: Any) -> Any:
    """The same JSON value with every number written as a float (1 -> 1.0)."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return float(value) if abs(value) < 2**53 else value
    if isinstance(value, list):
        return [numbers_as_floats(v) for v in value]
    return {k: numbers_as_floats(v) for k, v in value.items()}


@given(attributes)
def test_equal_inputs_have_no_diff(a):
    assert changed_fields(a, a) == []
    assert changed_fields(a, numbers_as_floats(a)) == [], "1 and 1.0 are the same number"


@given(attributes, attributes)
def test_names_exactly_the_keys_that_differ(a, b):
    assert changed_fields(a, b) == differing(a, b)


@given(attributes, attributes)
def test_symmetric(a, b):
    assert changed_fields(a, b) == changed_fields(b, a)
    assert (changed_fields(a, b) == []) == (changed_fields(b, a) == [])


@given(attributes, keys, json_values, json_values)
def test_one_changed_key_is_named(a, key, old, new):
    assume(not same(old, new))
    assert changed_fields({**a, key: old}, {**a, key: new}) == [key]


@given(attributes, attributes, st.lists(keys, max_size=3))
def test_ignored_keys_are_never_named(a, b, ignore):
    assert changed_fields(a, b, ignore) == [k for k in differing(a, b) if k not in ignore]


def test_type_changes_are_changes():
    """Cases a JSON-blind comparison gets wrong (Python says True == 1 == 1.0)."""
    assert changed_fields({"value": True}, {"value": 1}) == ["value"]
    assert changed_fields({"value": [False]}, {"value": [0.0]}) == ["value"]
    assert changed_fields({"value": {"n": 1}}, {"value": {"n": 1.0}}) == []
    assert changed_fields({"value": None}, {}) == ["value"]
    assert changed_fields({"value": "1"}, {"value": 1}) == ["value"]


# --- secrets ------------------------------------------------------------------------------------


def leaf_paths(value: Any, prefix: tuple[str, ...] = ()) -> list[str]:
    if isinstance(value, dict) and value:
        return [p for k, v in value.items() for p in leaf_paths(v, (*prefix, k))]
    return [".".join(prefix)] if prefix else []


@st.composite
def attributes_with_secret_paths(draw):
    """Attributes without fingerprints in them, and some of their leaf paths (plus absent ones)."""
    values = draw(attributes.filter(lambda a: PREFIX not in repr(a)))
    leaves = leaf_paths(values)
    paths = draw(st.lists(st.sampled_from(leaves), unique=True, max_size=4)) if leaves else []
    absent = draw(st.lists(keys.map(lambda k: f"absent_{k}.x"), max_size=2))
    return values, paths + absent


@given(attributes_with_secret_paths(), st.text(min_size=1, max_size=8))
def test_conceal_then_reveal_gives_the_original(case, salt):
    values, paths = case
    snapshot = repr(values)
    concealed, clear = conceal(values, paths, salt)
    assert repr(values) == snapshot, "conceal must not change its input"
    assert reveal(concealed, clear) == values
    assert set(clear) == {p for p in paths if not p.startswith("absent_")}
    for path, secret in clear.items():
        node = concealed
        for part in path.split("."):
            node = node[part]
        assert node == fingerprint(salt, secret), f"{path} is not concealed"
    concealed_twice, clear_twice = conceal(concealed, paths, salt)
    assert concealed_twice == concealed and clear_twice == {}, "concealing is idempotent"


@given(attributes_with_secret_paths(), st.text(min_size=1, max_size=8), st.text(min_size=1, max_size=8))
def test_fingerprints_depend_on_the_value_and_the_salt(case, salt, other_salt):
    values, paths = case
    _, clear = conceal(values, paths, salt)
    for secret in clear.values():
        assert fingerprint(salt, secret) == fingerprint(salt, secret)
        if other_salt != salt:
            assert fingerprint(salt, secret) != fingerprint(other_salt, secret)
