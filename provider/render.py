"""Views of a plan: the human diff (Terraform's symbols), JSON (terraform show -json) and markdown."""

from __future__ import annotations

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


def _value_lines(value: Any, symbol: str, indent: int) -> list[tuple[str, str]]:
    """A value too big for one line, as lines of (symbol, text)."""
    pad = " " * indent
    if isinstance(value, dict) and value:
        lines = [(symbol, "{")]
        width = max(len(k) for k in value)
        for key, item in value.items():
            lines += _entry(key, item, symbol, indent + 4, width)
        lines.append(("", pad + "  }"))
        return lines
    text = json.dumps(value, ensure_ascii=False)
    if isinstance(value, list) and len(text) > 80:
        body = json.dumps(value, ensure_ascii=False, indent=2).splitlines()
        return [(symbol, body[0])] + [("", pad + line) for line in body[1:]]
    return [(symbol, _scalar(value))]


def _entry(key: str, value: Any, symbol: str, indent: int, width: int) -> list[tuple[str, str]]:
    first, *rest = _value_lines(value, symbol, indent)
    return [(symbol, " " * indent + f"{symbol} {key:<{width}} = {first[1]}")] + rest


def _diff_lines(
    before: dict, after: dict, indent: int, hide_null: bool, sensitive: list[str], prefix: str = ""
) -> list[tuple[str, str]]:
    """Compares the values as planned (a changed secret has a new fingerprint), shows them masked."""
    lines: list[tuple[str, str]] = []
    keys = list(after) + [k for k in before if k not in after]
    shown = [k for k in keys if not (hide_null and after.get(k) is None and k not in before)]
    unchanged = sum(1 for k in shown if k in before and k in after and before[k] == after[k])
    shown = [k for k in shown if not (k in before and k in after and before[k] == after[k])]
    width = max((len(k) for k in shown), default=0)
    pad = " " * indent
    for key in shown:
        path = prefix + key
        old, new = (_shown(value, path, sensitive) for value in (before.get(key), after.get(key)))
        if key not in before:
            lines += _entry(key, new, "+", indent, width)
        elif key not in after:
            lines.append(("-", f"{pad}- {key:<{width}} = {_scalar(old)} -> null"))
        elif isinstance(old, dict) and isinstance(new, dict):
            lines.append(("~", f"{pad}~ {key:<{width}} = {{"))
            lines += _diff_lines(before[key], after[key], indent + 4, False, sensitive, path + ".")
            lines.append(("", f"{pad}  }}"))
        else:
            lines.append(("~", f"{pad}~ {key:<{width}} = {_scalar(old)} -> {_scalar(new)}"))
    if unchanged and before:
        noun = "attribute" if unchanged == 1 else "attributes"
        lines.append(("", f"{pad}  # ({unchanged} unchanged {noun} hidden)"))
    return lines


# --- the human view ---------------------------------------------------------------------------


def change_block(change: Change) -> list[tuple[str, str]]:
    symbol = SYMBOLS[change.action][0]
    before = change.before or {}
    headline = HEADLINES.get(change.action, "")
    if change.moved_from:
        headline = f"has moved from {change.moved_from}" + (" and will be updated in-place" if set(change.changed) - {"name"} else "")
    if change.importing:
        headline = "will be imported" + (" and updated in-place" if change.action == "update" else "")
    lines = [("#", f"  # {change.address} {headline}")]
    if change.reason:
        lines.append(("#", f"  # ({change.reason})"))
    lines.append((symbol, f"{symbol:>3} {change.address} {{"))
    if change.action in ("delete", "forget"):
        before = masked(before, change.sensitive)
        width = max((len(k) for k in before), default=0)
        lines += [("-", f"      - {k:<{width}} = {_scalar(v) if not isinstance(v, (dict, list)) else '{...}'}") for k, v in before.items() if v is not None]
    else:
        shown_before = before if change.action != "create" else {}
        lines += _diff_lines(shown_before, change.after or {}, 6, change.action == "create", change.sensitive)
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
    return item


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
