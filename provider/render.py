"""Views of a plan: the human diff (Terraform's symbols), JSON (terraform show -json) and markdown."""

from __future__ import annotations

import difflib
import json
from typing import Any

from rich.text import Text

from provider import __version__
from provider.plan import KNOWN_AFTER_APPLY, TERRAFORM_ACTIONS, Change, Plan

SENSITIVE = "(sensitive value)"
SYMBOLS = {
    "create": ("+", "green"),
    "update": ("~", "yellow"),
    "replace": ("-/+", "red"),
    "create-then-delete": ("+/-", "red"),
    "delete": ("-", "red"),
    "forget": (".", "cyan"),
    "no-op": (" ", ""),
}
HEADLINES = {
    "create": "will be created",
    "update": "will be updated in-place",
    "replace": "must be replaced",
    "create-then-delete": "must be replaced",  # as Terraform says it; the +/- symbol tells the order
    "delete": "will be destroyed",
    "forget": "will be removed from state (not deleted)",
}


# --- values -----------------------------------------------------------------------------------

# A list or mapping whose JSON is at most this long is shown on one line.
INLINE_WIDTH = 80

Line = tuple[str, str]  # (symbol, text): the symbol picks the colour


def masked(value: Any, sensitive: list[str], prefix: str = "") -> Any:
    """A copy of `value` with every sensitive attribute path replaced by "(sensitive value)"."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            path = f"{prefix}{key}"
            out[key] = SENSITIVE if path in sensitive else masked(item, sensitive, path + ".")
        return out
    return value


def _shown(value: Any, path: str, sensitive: list[str]) -> Any:
    """The value at attribute `path` as displayed."""
    return SENSITIVE if path in sensitive else masked(value, sensitive, path + ".")


def _scalar(value: Any) -> str:
    return value if value in (SENSITIVE, KNOWN_AFTER_APPLY) else json.dumps(value, ensure_ascii=False)


def _value_lines(value: Any, symbol: str, indent: int) -> list[Line]:
    """A whole value (added, removed, or replaced by a value of another type) as lines of
    (symbol, text); the first line's text is the value alone, to follow `key = `."""
    pad = " " * indent
    if isinstance(value, (dict, list)) and value and len(_scalar(value)) > INLINE_WIDTH:
        if isinstance(value, dict):
            width = max(len(k) for k in value)
            body = [line for key, item in value.items() for line in _entry(key, item, symbol, indent + 4, width)]
            return [(symbol, "{"), *body, ("", pad + "  }")]
        body = [line for item in value for line in _element(item, symbol, indent + 4)]
        return [(symbol, "["), *body, ("", pad + "  ]")]
    return [(symbol, _scalar(value))]


def _entry(key: str, value: Any, symbol: str, indent: int, width: int, suffix: str = "") -> list[Line]:
    """`symbol key = value` for a mapping entry; `suffix` follows the last line (" -> null")."""
    first, *rest = _value_lines(value, symbol, indent)
    lines = [(symbol, " " * indent + f"{symbol} {key:<{width}} = {first[1]}"), *rest]
    return _suffixed(lines, suffix)


def _element(value: Any, symbol: str, indent: int) -> list[Line]:
    """`symbol value` for a list element."""
    first, *rest = _value_lines(value, symbol, indent)
    return [(symbol, " " * indent + f"{symbol} {first[1]}"), *rest]


def _suffixed(lines: list[Line], suffix: str) -> list[Line]:
    return lines[:-1] + [(lines[-1][0], lines[-1][1] + suffix)] if suffix else lines


def _hidden(count: int, noun: str, pad: str) -> list[Line]:
    if not count:
        return []
    return [("", f"{pad}  # ({count} unchanged {noun}{'' if count == 1 else 's'} hidden)")]


def _diff_lines(
    before: dict, after: dict, indent: int, hide_null: bool, sensitive: list[str], prefix: str = "",
    server_default: dict[str, Any] | None = None,
) -> list[Line]:
    """The entries of two mappings that differ, nested ones as deep as they go, the rest counted
    as hidden. Compares the values as planned (a changed secret has a new fingerprint), shows them
    masked. An absent key and a null value are the same: nothing."""
    keys = list(after) + [k for k in before if k not in after]
    shown = [k for k in keys if before.get(k) != after.get(k)]
    if hide_null:
        shown = [k for k in shown if after.get(k) is not None]
    unchanged = 0 if not before else sum(1 for k in keys if k in before and before.get(k) == after.get(k))
    width = max((len(k) for k in shown), default=0)
    lines: list[Line] = []
    for key in shown:
        path = prefix + key
        old, new = before.get(key), after.get(key)
        if path in sensitive:
            old, new = (None if v is None else SENSITIVE for v in (old, new))
        if server_default and key == server_default["attribute"] and old is None and isinstance(new, dict):
            lines += _from_default(key, server_default, new, indent, width, sensitive)
            continue
        lines += _changed_entry(key, old, new, indent, width, sensitive, path)
    return lines + _hidden(unchanged, "attribute", " " * indent)


def _changed_entry(key: str, old: Any, new: Any, indent: int, width: int, sensitive: list[str], path: str) -> list[Line]:
    pad = " " * indent
    if old is None:
        return _entry(key, _shown(new, path, sensitive), "+", indent, width)
    if new is None:
        return _entry(key, _shown(old, path, sensitive), "-", indent, width, " -> null")
    if isinstance(old, dict) and isinstance(new, dict):
        body = _diff_lines(old, new, indent + 4, False, sensitive, path + ".")
        return [("~", f"{pad}~ {key:<{width}} = {{"), *body, ("", pad + "  }")]
    if isinstance(old, list) and isinstance(new, list):
        return [("~", f"{pad}~ {key:<{width}} = ["), *_list_diff(old, new, indent + 4), ("", pad + "  ]")]
    return _replaced(f"{key:<{width}} = ", _shown(old, path, sensitive), _shown(new, path, sensitive), indent)


def _replaced(label: str, old: Any, new: Any, indent: int) -> list[Line]:
    """`~ label old -> new`, either value over several lines when big."""
    first, *rest = _value_lines(old, "~", indent)
    lines = [("~", " " * indent + f"~ {label}{first[1]}"), *rest]
    first, *rest = _value_lines(new, "~", indent)
    return _suffixed(lines, f" -> {first[1]}") + rest


def _list_diff(before: list, after: list, indent: int) -> list[Line]:
    """Elements aligned as difflib aligns lines (the longest common runs stay put): runs of equal
    elements are counted as hidden where they are; an element replaced by one of the same shape at
    the same place is diffed inside (a mapping entry by entry), others are removed and added whole."""
    pad = " " * indent
    keys = [[json.dumps(v, sort_keys=True) for v in values] for values in (before, after)]
    matcher = difflib.SequenceMatcher(None, *keys, autojunk=False)
    lines: list[Line] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            lines += _hidden(i2 - i1, "element", pad)
            continue
        old, new = before[i1:i2], after[j1:j2]
        paired = min(len(old), len(new)) if tag == "replace" else 0
        for a, b in zip(old[:paired], new[:paired]):
            if isinstance(a, dict) and isinstance(b, dict):
                lines += [("~", pad + "~ {"), *_diff_lines(a, b, indent + 4, False, []), ("", pad + "  }")]
            elif isinstance(a, list) and isinstance(b, list):
                lines += [("~", pad + "~ ["), *_list_diff(a, b, indent + 4), ("", pad + "  ]")]
            else:
                lines += _replaced("", a, b, indent)
        lines += [line for a in old[paired:] for line in _element(a, "-", indent)]
        lines += [line for b in new[paired:] for line in _element(b, "+", indent)]
    return lines


def _paths_from(before: Any, after: Any) -> list[list[str | int]]:
    """The nested paths (keys and list indexes) at which two values differ, by deepdiff: slow on
    large values, so only called for attributes already known to differ."""
    from deepdiff import DeepDiff

    diff = DeepDiff(before, after, view="tree", verbose_level=0)
    paths = {tuple(level.path(output_format="list")) for levels in diff.values() for level in levels}
    return [list(path) for path in sorted(paths, key=lambda path: [str(step) for step in path])]


def _filled(default: Any, value: Any, path: str = "") -> list[tuple[str, Any, Any]]:
    """(dotted path, default, value) wherever a value differs from the default it was made from,
    as deep as both are mappings."""
    if not (isinstance(default, dict) and isinstance(value, dict)):
        return [] if default == value else [(path, default, value)]
    keys = list(value) + [k for k in default if k not in value]
    return [leaf for k in keys for leaf in _filled(default.get(k), value.get(k), f"{path}.{k}" if path else k)]


def _from_default(key: str, default: dict[str, Any], value: Any, indent: int, width: int, sensitive: list[str]) -> list[Line]:
    """A new attribute made from a server default: the default named, and only what was filled in."""
    pad = " " * indent
    leaves = _filled(default["value"], value)
    inner = max((len(path) for path, _, _ in leaves), default=0)
    body = [line for path, old, new in leaves
            for line in _changed_entry(path, old, new, indent + 4, inner, sensitive, f"{key}.{path}")]
    return [("+", f"{pad}+ {key:<{width}} = ({default['label']}) {{"), *body, ("", pad + "  }")]


# --- the human view ---------------------------------------------------------------------------


def change_block(change: Change) -> list[tuple[str, str]]:
    symbol = SYMBOLS[change.action][0]
    before = change.before or {}
    headline = HEADLINES.get(change.action, "")
    if change.moved_from:
        headline = f"has moved from {change.moved_from}" + (" and will be updated in-place" if set(change.changed) - {"name"} else "")
    if change.importing:
        headline = "will be imported" + (" and updated in-place" if change.action == "update" else "")
    # As Terraform: "# ADDRESS (deposed object ID) will be destroyed".
    subject = f"{change.address} (deposed object {change.id})" if change.of_deposed else change.address
    lines = [("#", f"  # {subject} {headline}")]
    if change.reason:
        lines.append(("#", f"  # ({change.reason})"))
    lines.append((symbol, f"{symbol:>3} {change.address} {{"))
    if change.action in ("delete", "forget"):
        before = masked(before, change.sensitive)
        width = max((len(k) for k in before), default=0)
        lines += [("-", f"      - {k:<{width}} = {_scalar(v) if not isinstance(v, (dict, list)) else '{...}'}") for k, v in before.items() if v is not None]
    else:
        shown_before = before if change.action != "create" else {}
        lines += _diff_lines(shown_before, change.after or {}, 6, change.action == "create", change.sensitive,
                             server_default=change.server_default if change.action == "create" else None)
    lines.append(("", "    }"))
    return lines


def summary_line(plan: Plan) -> str:
    count = plan.count()
    line = f"Plan: {count['add']} to add, {count['change']} to change, {count['destroy']} to destroy."
    extra = [f"{count[k]} to {k}" for k in ("import", "forget") if count[k]]
    return line[:-1] + (", " + ", ".join(extra) + "." if extra else ".")


def human(plan: Plan) -> Text:
    out = Text()

    def emit(lines: list[tuple[str, str]]) -> None:
        for symbol, text in lines:
            style = {"+": "green", "~": "yellow", "-": "red", "-/+": "red", "#": "dim", ".": "cyan"}.get(symbol, "")
            out.append(text + "\n", style=style)

    for warning in plan.warnings:
        out.append(f"Note: {warning}\n", style="cyan")
    if plan.drift:
        out.append("\nObjects have changed outside of prefect-provider:\n\n", style="bold")
        for change in plan.drift:
            emit(drift_block(change))
            out.append("\n")
    pending = plan.pending
    if plan.mode == "refresh-only":
        if not plan.drift:
            out.append("\nNo changes. The live workspace matches the state.\n", style="green")
        else:
            out.append("\nApplying this refresh-only plan updates the state to match; no object is changed.\n")
        return out
    if not pending:
        out.append("\nNo changes. The live workspace matches the configuration.\n", style="green")
        return out
    out.append("\nprefect-provider will perform the following actions:\n\n", style="bold")
    for change in pending:
        emit(change_block(change))
        out.append("\n")
    out.append(summary_line(plan) + "\n", style="bold")
    return out


def drift_block(change: Change) -> list[tuple[str, str]]:
    if change.after is None:
        return [("-", f"  - {change.address}: {change.reason or 'deleted outside prefect-provider'}")]
    lines = _diff_lines(change.before or {}, change.after, 6, False, change.sensitive)
    return [("~", f"  ~ {change.address} {{")] + lines + [("", "    }")]


# --- the machine view: terraform show -json ---------------------------------------------------


def _sensitive_map(value: Any, sensitive: list[str], prefix: str = "") -> Any:
    """Terraform's *_sensitive shape: true where the value is sensitive, else {} / false."""
    if not isinstance(value, dict):
        return False
    out = {}
    for key, item in value.items():
        path = f"{prefix}{key}"
        if path in sensitive:
            out[key] = True
        elif isinstance(item, dict):
            nested = _sensitive_map(item, sensitive, path + ".")
            if nested:
                out[key] = nested
    return out


def change_json(change: Change) -> dict[str, Any]:
    actions = TERRAFORM_ACTIONS[change.action]
    after = masked(change.after, change.sensitive) if change.after is not None else None
    # As Terraform: values known only after apply are left out of `after` and flagged in `after_unknown`.
    unknown = {key: True for key, value in (after or {}).items() if value == KNOWN_AFTER_APPLY}
    item = {
        "address": change.address,
        "type": change.kind,
        "name": change.name,
        "change": {
            "actions": actions,
            "before": masked(change.before, change.sensitive) if change.before is not None else None,
            "after": {k: v for k, v in after.items() if k not in unknown} if after is not None else None,
            "after_unknown": unknown,
            "before_sensitive": _sensitive_map(change.before, change.sensitive),
            "after_sensitive": _sensitive_map(change.after, change.sensitive),
        },
    }
    if change.action_reason:
        item["action_reason"] = str(change.action_reason)
    if change.reason:
        item["reason"] = change.reason
    if change.id:
        item["id"] = change.id
    if change.importing:
        item["change"]["importing"] = {"id": change.id}
    if change.of_deposed:
        item["deposed"] = change.id
    item["change"]["changed_paths"] = changed_paths(change)
    return item


def changed_paths(change: Change) -> dict[str, list[list[str | int]]]:
    """Attribute -> the nested paths at which it changes: for an update or a replacement, each
    attribute that differs; for a create, the attribute made from a server default (the paths the
    configuration filled in). `[]` is the attribute as a whole."""
    before, after = change.before or {}, change.after or {}
    if change.action == "create" and change.server_default:
        attribute = change.server_default["attribute"]
        return {attribute: _paths_from(change.server_default["value"], after.get(attribute))}
    if change.action not in ("update", "replace"):
        return {}
    differing = [k for k in list(after) + [k for k in before if k not in after] if before.get(k) != after.get(k)]
    return {key: _paths_from(before.get(key), after.get(key)) for key in differing}


def plan_json(plan: Plan) -> dict[str, Any]:
    return {
        "format_version": "1.2",
        "prefect_provider_version": __version__,
        "mode": plan.mode,
        "resource_changes": [change_json(c) for c in plan.changes],
        "resource_drift": [change_json(c) for c in plan.drift],
        "summary": plan.count(),
        "has_changes": plan.has_changes,
        "warnings": plan.warnings,
    }


# --- the pull-request view: markdown ----------------------------------------------------------


def _details(summary: str, body: str) -> str:
    return f"<details><summary>{summary}</summary>\n\n```diff\n{body.rstrip()}\n```\n\n</details>\n"


def plan_markdown(plan: Plan) -> str:
    """A PR comment: the summary line first, a warning when anything is destroyed, the diff folded."""
    if not plan.has_changes:
        return "### prefect-provider plan: no changes\n\nThe live workspace matches the configuration.\n"
    lines = [f"### prefect-provider {summary_line(plan)}", ""]
    doomed = [c.address for c in plan.changes if c.action.deletes]
    if doomed:
        lines += ["> [!WARNING]", f"> This plan destroys or replaces {len(doomed)} object(s): "
                  + ", ".join(f"`{a}`" for a in doomed), ""]
    if plan.drift:
        lines += [f"{len(plan.drift)} object(s) changed outside prefect-provider since the last apply.", ""]
    lines += ["| | address | action | reason |", "|---|---|---|---|"]
    for change in plan.pending:
        symbol = SYMBOLS[change.action][0]
        lines.append(f"| `{symbol}` | `{change.address}` | {change.action} | {change.reason or ''} |")
    lines.append("")
    lines.append(_details("Show the full plan", human(plan).plain))
    return "\n".join(lines)


def drift_markdown(plan: Plan) -> str:
    """A drift report: one summary line first, the details folded."""
    if not plan.drift:
        return "### prefect-provider drift: none\n\nThe live workspace matches the state.\n"
    lines = [f"### prefect-provider drift: {len(plan.drift)} object(s) changed outside prefect-provider", ""]
    lines += ["| address | what happened |", "|---|---|"]
    lines += [f"| `{c.address}` | {c.reason} |" for c in plan.drift]
    lines.append("")
    lines.append(_details("Show the changes", human(plan).plain))
    return "\n".join(lines)
