"""The `prefect-provider` command line. Heavy modules are imported inside commands so it starts fast."""

from __future__ import annotations

import functools
import json
import math
import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

if TYPE_CHECKING:
    from provider.client import PrefectClient
    from provider.config import Configuration
    from provider.plan import Plan
    from provider.session import Session
    from provider.state import Backend, State

app = typer.Typer(
    rich_markup_mode=None,  # plain click help: rich's help renderer costs more start-up than all the rest
    help="Prefect as code: plan and apply work pools, queues, variables and more from YAML.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
state_app = typer.Typer(help="Inspect and edit the state.", no_args_is_help=True)
server_app = typer.Typer(help="The embedded local Prefect server.", no_args_is_help=True)
webhooks_app = typer.Typer(help="Prefect Cloud webhooks managed by the configuration.", no_args_is_help=True)
app.add_typer(state_app, name="state")
app.add_typer(server_app, name="server")
app.add_typer(webhooks_app, name="webhooks")
service_accounts_app = typer.Typer(help="Prefect Cloud service accounts managed by the configuration.", no_args_is_help=True)
app.add_typer(service_accounts_app, name="service-accounts")

# --- shared options ---------------------------------------------------------------------------

DirArg = Annotated[Path, typer.Argument(help="Configuration directory.", show_default=True)]
ApiUrl = Annotated[Optional[str], typer.Option("--api-url", help="Prefect API URL (else PREFECT_API_URL, the active profile, or the embedded server).")]
Vars = Annotated[Optional[list[str]], typer.Option("--var", help="NAME=VALUE for ${var.NAME}; repeatable.")]
VarFiles = Annotated[Optional[list[Path]], typer.Option("--var-file", help="YAML file of NAME: VALUE; repeatable.")]
Targets = Annotated[Optional[list[str]], typer.Option("--target", help="Only this address (and what it needs); repeatable.")]
Replaces = Annotated[Optional[list[str]], typer.Option("--replace", help="Force replacement of this address; repeatable.")]
LockTimeout = Annotated[str, typer.Option("--lock-timeout", help="How long to wait for the state lock, e.g. 60s.")]
StepOutputs = Annotated[Optional[list[str]], typer.Option(
    "--step-output", help="STEP_ID.KEY=VALUE: an output of a prefect.yaml build or push step (never run); repeatable.")]
FlowPython = Annotated[Optional[str], typer.Option(
    "--flow-python", envvar="PREFECT_PROVIDER_FLOW_PYTHON",
    help="An interpreter with prefect and the flows' dependencies, for parameter schemas the source alone cannot tell.")]


def _console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def _error(message: str) -> None:
    _console(stderr=True).print(f"[bold red]Error:[/bold red] {_escape(message)}")


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def handle_errors(command):
    """Turn every ProviderError into a message and exit code 1: no tracebacks for users."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        from provider.errors import ConfigErrors, ProviderError

        try:
            return command(*args, **kwargs)
        except ConfigErrors as exc:
            for error in exc.errors:
                _error(str(error))
            raise typer.Exit(1) from None
        except ProviderError as exc:
            _error(str(exc))
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            _error("interrupted")
            raise typer.Exit(130) from None

    return wrapper


# How long the Prefect API may stay silent before the command gives up (set by the global --timeout).
_unreachable_after: float = 120.0  # provider.client.DEFAULT_UNREACHABLE_AFTER, without importing httpx


@app.callback()
def global_options(
    timeout: Annotated[str, typer.Option(
        "--timeout", envvar="PREFECT_PROVIDER_TIMEOUT",
        help="Give up when the Prefect API has not answered for this long, e.g. 60s or 5m (0: never).")] = "2m",
) -> None:
    # Every command starts here: from now on, whatever it prints passes through the redactor.
    from provider.secrets import REDACTOR, RedactingStream

    global _unreachable_after
    REDACTOR.reset()
    REDACTOR.add_credentials(os.environ.get("PREFECT_API_KEY"), os.environ.get("PREFECT_API_AUTH_STRING"),
                             os.environ.get("PREFECT_API_URL"))
    for name in ("stdout", "stderr"):
        if not isinstance(getattr(sys, name), RedactingStream):
            setattr(sys, name, RedactingStream(getattr(sys, name)))
    _unreachable_after = parse_duration(timeout) or math.inf


def parse_duration(text: str) -> float:
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*", text)
    if not match:
        raise typer.BadParameter(f"{text!r} is not a duration like 30s, 2m or 0")
    value, unit = float(match.group(1)), match.group(2) or "s"
    return value * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]


# --- sessions ---------------------------------------------------------------------------------


def load_config(directory: Path, var: list[str] | None, var_file: list[Path] | None,
                step_output: list[str] | None = None, *, with_step_outputs: bool = False,
                flow_python: str | None = None) -> Configuration:
    """`with_step_outputs`: the command writes or compares deployments, so prefect.yaml step outputs are needed."""
    from provider.config import load_configuration, load_var_files
    from provider.prefect_yaml import parse_step_outputs

    outputs = parse_step_outputs(list(step_output or [])) if with_step_outputs else None
    return load_configuration(directory, load_var_files(list(var_file or []), list(var or [])), outputs, flow_python)


def backend_for(directory: Path, config: Configuration | None = None) -> Backend:
    from provider.state import backend_from_settings

    return backend_from_settings(config.backend if config else None, directory)


def connect(api_url: str | None) -> PrefectClient:
    from provider.client import Connection, PrefectClient
    from provider.connection import resolve
    from provider.server import EmbeddedServer

    def start_embedded() -> Connection:
        server = EmbeddedServer()
        err = _console(stderr=True)
        if server.running() is None:
            with err.status("No Prefect API configured: starting the embedded local Prefect server…"):
                info, _ = server.ensure()
        else:
            info, _ = server.ensure()
        err.print(f"Using the embedded local Prefect server at {info.api_url} (data in {server.data_dir}).")
        return Connection(info.api_url, source="embedded server")

    return PrefectClient(resolve(api_url, start_embedded=start_embedded), unreachable_after=_unreachable_after)


def open_session(directory: Path, config: Configuration | None, api_url: str | None) -> Session:
    """The workflow on the configuration's backend, against the API the options name."""
    from provider.session import Session

    return Session(config, backend_for(directory, config), lambda: connect(api_url))


# --- validate / schema ------------------------------------------------------------------------


@app.command()
@handle_errors
def validate(directory: DirArg = Path("."), var: Vars = None, var_file: VarFiles = None,
             step_output: StepOutputs = None, flow_python: FlowPython = None) -> None:
    """Check the configuration offline: schema, names, references and cycles."""
    config = load_config(directory, var, var_file, step_output, with_step_outputs=True, flow_python=flow_python)
    later = f"; {len(config.deferred)} more read data sources and are checked by plan" if config.deferred else ""
    _console().print(f"[green]Success![/green] The configuration is valid ({len(config.resources)} resources{later}).")


@app.command()
def schema() -> None:
    """Print the JSON Schema of the configuration files."""
    from provider.schema import configuration_schema

    typer.echo(json.dumps(configuration_schema(), indent=2))


# --- plan / apply / destroy / drift -----------------------------------------------------------


def _show_plan(plan: Plan, as_json: bool) -> None:
    from provider.render import human, plan_json

    if as_json:
        typer.echo(json.dumps(plan_json(plan), indent=2))
    else:
        _console().print(human(plan))


@app.command()
@handle_errors
def plan(
    directory: DirArg = Path("."),
    out: Annotated[Optional[Path], typer.Option("--out", help="Save the plan to this file for `apply PLAN`.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan as JSON (terraform show -json shape).")] = False,
    markdown: Annotated[Optional[Path], typer.Option("--markdown", help="Also write the plan as markdown (for a PR comment).")] = None,
    detailed_exitcode: Annotated[bool, typer.Option("--detailed-exitcode", help="Exit 2 when there are changes.")] = False,
    refresh_only: Annotated[bool, typer.Option("--refresh-only", help="Only compare state with the live workspace.")] = False,
    destroy: Annotated[bool, typer.Option("--destroy", help="Plan to destroy everything managed.")] = False,
    target: Targets = None,
    replace: Replaces = None,
    var: Vars = None,
    var_file: VarFiles = None,
    step_output: StepOutputs = None,
    flow_python: FlowPython = None,
    api_url: ApiUrl = None,
) -> None:
    """Show what apply would change."""
    config = load_config(directory, var, var_file, step_output, with_step_outputs=True, flow_python=flow_python)
    mode = "destroy" if destroy else "refresh-only" if refresh_only else "normal"
    result = open_session(directory, config, api_url).plan(mode, target or [], replace or [])
    _show_plan(result, as_json)
    if markdown:
        from provider.render import plan_markdown

        markdown.write_text(plan_markdown(result))
    if out:
        out.write_text(json.dumps(result.to_file(), indent=2))
        _console(stderr=True).print(f"Saved the plan to {out}. Apply exactly it with: prefect-provider apply {out}")
    if detailed_exitcode and result.has_changes:
        raise typer.Exit(2)


@app.command()
@handle_errors
def drift(
    directory: DirArg = Path("."),
    as_json: Annotated[bool, typer.Option("--json", help="Print the drift as JSON (the plan JSON's resource_drift).")] = False,
    markdown: Annotated[Optional[Path], typer.Option("--markdown", help="Also write a markdown drift report.")] = None,
    var: Vars = None,
    var_file: VarFiles = None,
    step_output: StepOutputs = None,
    flow_python: FlowPython = None,
    api_url: ApiUrl = None,
) -> None:
    """Compare state with the live workspace; exit 2 when it drifted."""
    from provider.render import drift_markdown, plan_json

    config = load_config(directory, var, var_file, step_output, with_step_outputs=True, flow_python=flow_python)
    result = open_session(directory, config, api_url).plan("refresh-only")
    if as_json:
        report = plan_json(result)
        typer.echo(json.dumps({"format_version": report["format_version"], "resource_drift": report["resource_drift"]}, indent=2))
    else:
        _show_plan(result, as_json=False)
    if markdown:
        markdown.write_text(drift_markdown(result))
    if result.drift:
        raise typer.Exit(2)


def _confirm(auto_approve: bool, question: str) -> None:
    from provider.errors import ProviderError

    if auto_approve:
        return
    if not sys.stdin.isatty():
        raise ProviderError("refusing to apply without confirmation: not interactive; pass --auto-approve")
    _console().print(f"\n[bold]{question}[/bold]\n  Only 'yes' will be accepted to approve.\n")
    if typer.prompt("  Enter a value", default="", show_default=False).strip() != "yes":
        raise ProviderError("apply cancelled")


def _run_apply(session: Session, plan: Plan, parallelism: int) -> None:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from provider.engine import build_steps, describe_error
    from provider.errors import ApiUnreachable, ProviderError

    verbs = {"create": ("Creating", "Creation complete"), "update": ("Modifying", "Modifications complete"),
             "delete": ("Destroying", "Destruction complete"), "forget": ("Forgetting", "Removed from state"),
             "import": ("Importing", "Import complete")}
    total = len(build_steps(plan.changes))
    err = _console(stderr=True)
    with Progress(
        TextColumn("[bold]Applying"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=err, transient=True,
    ) as progress:
        task = progress.add_task("apply", total=total)

        def on_event(event: str, step, error) -> None:
            address = step.change.address
            if event == "done":
                progress.advance(task)
                progress.console.print(f"{address}: {verbs[step.operation][1]}")
            elif event == "failed":
                progress.advance(task)
                if not isinstance(error, ApiUnreachable):  # said once, below
                    progress.console.print(f"[red]{address}: {verbs[step.operation][0]} failed[/red]")
            elif event == "skipped":
                progress.advance(task)
            elif event == "progress":
                progress.console.print(f"{address}: {error}")

        result = session.apply(plan, parallelism, on_event)
    count = {"add": 0, "change": 0, "destroy": 0}
    for step in result.done:
        key = {"create": "add", "update": "change", "delete": "destroy"}.get(step.operation)
        if key:
            count[key] += 1
    summary = f"Resources: {count['add']} added, {count['change']} changed, {count['destroy']} destroyed."
    if result.ok:
        _console().print(f"\n[bold green]Apply complete![/bold green] {summary}")
        _print_outputs([step.change.address for step in result.done], session.state)
        return
    for step, error in result.failed:
        if not isinstance(error, ApiUnreachable):
            _error(f"{step.change.address}: {describe_error(error)}")
    if result.unreachable is not None:
        unfinished = len(result.failed) + len(result.skipped) + len(result.not_attempted)
        raise ProviderError(f"{result.unreachable}\nApply stopped: state records what was done. {summary} "
                            f"{unfinished} not done; run apply again once the API answers.")
    for step in result.skipped:
        _error(f"{step.change.address}: not attempted because something it depends on failed")
    raise ProviderError(f"apply failed; state records what was done. {summary}")


def _print_outputs(addresses: list[str], state: State) -> None:
    """The outputs of the objects an apply wrote (e.g. a webhook's endpoint, a registry's URL)."""
    from resources import KINDS

    lines = []
    for address in sorted(set(addresses)):
        record = state.resources.get(address)
        outputs = KINDS[record.kind].outputs(record.name, record.id, record.attributes) if record else {}
        for name, value in outputs.items():
            lines.append(f"  {address}.{name} = {json.dumps(value)}")
    if lines:
        _console().print("\n[bold]Outputs:[/bold]\n\n" + _escape("\n".join(lines)))


@app.command()
@handle_errors
def apply(
    source: Annotated[Path, typer.Argument(help="Configuration directory, or a plan saved with plan --out.")] = Path("."),
    auto_approve: Annotated[bool, typer.Option("--auto-approve", help="Do not ask for confirmation.")] = False,
    parallelism: Annotated[int, typer.Option("--parallelism", min=1, help="Operations at once.")] = 10,
    lock_timeout: LockTimeout = "0s",
    target: Targets = None,
    replace: Replaces = None,
    refresh_only: Annotated[bool, typer.Option("--refresh-only", help="Only update state to match the live workspace.")] = False,
    var: Vars = None,
    var_file: VarFiles = None,
    step_output: StepOutputs = None,
    flow_python: FlowPython = None,
    api_url: ApiUrl = None,
) -> None:
    """Make the live workspace match the configuration (or apply a saved plan)."""
    if source.is_file():
        _apply_saved(source, api_url, parallelism, parse_duration(lock_timeout), var, var_file, step_output, flow_python)
        return
    mode = "refresh-only" if refresh_only else "normal"
    _plan_then_apply(source, var, var_file, api_url, mode, target, replace, lock_timeout, auto_approve, parallelism,
                     step_output, flow_python)


def _plan_then_apply(directory, var, var_file, api_url, mode, targets, replace, lock_timeout, auto_approve, parallelism,
                     step_output=None, flow_python=None):
    """Under the state lock: plan, show it, ask (unless approved), apply."""
    config = load_config(directory, var, var_file, step_output, with_step_outputs=mode != "destroy", flow_python=flow_python)
    session = open_session(directory, config, api_url)
    with session.locked("destroy" if mode == "destroy" else "apply", parse_duration(lock_timeout)):
        result = session.plan(mode, targets or [], replace or [])
        _show_plan(result, as_json=False)
        if not result.has_changes:
            return
        question = "Do you really want to destroy all managed objects?" if mode == "destroy" else "Do you want to perform these actions?"
        _confirm(auto_approve, question)
        _run_apply(session, result, parallelism)


def _apply_saved(path: Path, api_url: str | None, parallelism: int, lock_timeout: float, var, var_file,
                 step_output=None, flow_python=None) -> None:
    from provider.plan import load_saved_plan

    saved = load_saved_plan(path)
    # The configuration names the backend and holds the secrets the plan only has fingerprints of.
    config = load_config(Path(saved.config_dir or "."), var, var_file, step_output, with_step_outputs=True,
                         flow_python=flow_python)
    session = open_session(config.directory, config, api_url)
    with session.locked("apply", lock_timeout):
        session.load_saved(saved, path)
        _show_plan(saved, as_json=False)
        if saved.has_changes:
            _run_apply(session, saved, parallelism)


@app.command()
@handle_errors
def destroy(
    directory: DirArg = Path("."),
    auto_approve: Annotated[bool, typer.Option("--auto-approve", help="Do not ask for confirmation.")] = False,
    parallelism: Annotated[int, typer.Option("--parallelism", min=1)] = 10,
    lock_timeout: LockTimeout = "0s",
    target: Targets = None,
    var: Vars = None,
    var_file: VarFiles = None,
    api_url: ApiUrl = None,
) -> None:
    """Delete every object the state manages."""
    _plan_then_apply(directory, var, var_file, api_url, "destroy", target, None, lock_timeout, auto_approve, parallelism)


@app.command("provision-infra")
@handle_errors
def provision_infra(
    pool: Annotated[str, typer.Argument(help="The work pool whose provision_infra to plan and apply.")],
    directory: DirArg = Path("."),
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only show the plan; change nothing.")] = False,
    destroy: Annotated[bool, typer.Option("--destroy", help="Tear the pool's cloud side down; the pool stays.")] = False,
    auto_approve: Annotated[bool, typer.Option("--auto-approve", help="Do not ask for confirmation.")] = False,
    lock_timeout: LockTimeout = "0s",
    var: Vars = None,
    var_file: VarFiles = None,
    api_url: ApiUrl = None,
) -> None:
    """Plan and apply (or destroy) one work pool's cloud infrastructure, and the pool's template."""
    import contextlib

    from provider.provision import infra_scope

    whole = open_session(directory, load_config(directory, var, var_file), api_url)
    locked = contextlib.nullcontext() if dry_run else whole.locked("provision-infra", parse_duration(lock_timeout))
    with locked:
        state = whole.backend.read()
        scoped, targets = infra_scope(whole.resolved_config(), state, pool, destroy)
        session = whole.with_config(scoped)
        result = session.plan(targets=targets, state=state)
        _show_plan(result, as_json=False)
        if dry_run or not result.has_changes:
            return
        _confirm(auto_approve, "Do you want to perform these actions?")
        _run_apply(session, result, parallelism=10)


@app.command("import")
@handle_errors
def import_(
    address: Annotated[str, typer.Argument(help="KIND.NAME, as it is (or will be) declared.")],
    id_or_name: Annotated[str, typer.Argument(help="The object's id or name on the server.")],
    directory: DirArg = Path("."),
    lock_timeout: LockTimeout = "0s",
    var: Vars = None,
    var_file: VarFiles = None,
    api_url: ApiUrl = None,
) -> None:
    """Adopt an existing object into state, so the configuration manages it from now on."""
    from resources import CATALOG

    try:
        parsed = CATALOG.parse(address)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    config = load_config(directory, var, var_file)
    record = open_session(directory, config, api_url).import_(parsed, id_or_name, parse_duration(lock_timeout))
    typer.echo(f"Imported {address} (id {record.id}). Run plan to compare it with the configuration.")


@app.command()
@handle_errors
def export(
    kinds: Annotated[Optional[str], typer.Option("--kinds", help="Comma-separated kinds (default: all).")] = None,
    out: Annotated[Path, typer.Option("--out", help="Directory to write the configuration and state to.")] = Path("export"),
    pulumi: Annotated[bool, typer.Option("--pulumi", help="Write a Pulumi program adopting the objects instead.")] = False,
    workspace: Annotated[Optional[str], typer.Option("--workspace", help="Export this Prefect Cloud workspace (by handle) of the API URL's account; the configuration gets `workspace: HANDLE`.")] = None,
    api_url: ApiUrl = None,
) -> None:
    """Write the live workspace as configuration files, with a state that adopts them."""
    import contextlib

    from rich.table import Table

    from provider.config import WorkspaceSetting
    from provider.connection import workspace_client
    from provider.engine import cloud_refusal
    from provider.errors import Location, ProviderError
    from provider.export import export_pulumi_program, export_workspace
    from provider.state import STATE_FILE, LocalBackend
    from resources import KINDS

    if pulumi and workspace:
        raise ProviderError("--workspace: a Pulumi program talks to the workspace of its API URL; export with that URL instead")

    exportable = [k for k, kind in KINDS.items() if not kind.data_only]
    chosen = [k.strip() for k in kinds.split(",")] if kinds else [k for k in exportable if KINDS[k].exported_by_default]
    unknown = [k for k in chosen if k not in exportable]
    if unknown:
        raise ProviderError(f"unknown kinds {', '.join(unknown)} (expected some of: {', '.join(exportable)})")
    backend = LocalBackend(out / STATE_FILE)
    if pulumi and (out / "__main__.py").exists():
        raise ProviderError(f"{out / '__main__.py'} already exists: export into a new directory")
    if backend.read() is not None:
        raise ProviderError(f"{backend.describe()} already exists: export into a new directory")
    with connect(api_url) as client, contextlib.ExitStack() as stack:
        if workspace:  # as a configuration's `workspace:` setting is resolved
            client = stack.enter_context(workspace_client(client, WorkspaceSetting(workspace, Location("--workspace")), None))
        if not client.connection.is_cloud:
            cloud_only = [k for k in chosen if KINDS[k].cloud_only]
            if kinds and cloud_only:
                raise ProviderError(cloud_refusal(", ".join(cloud_only), client.connection))
            chosen = [k for k in chosen if k not in cloud_only]
        result = (export_pulumi_program if pulumi else export_workspace)(client, chosen)
        if workspace:
            result.files["workspace.yaml"] = f"workspace: {json.dumps(workspace)}\n"
            result.state.workspace = client.connection.workspace_id
    for relative, text in result.files.items():
        path = out / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    if not pulumi:
        backend.write(result.state)
    table = Table("kind", "exported", title=f"Exported to {out}")
    for kind_name, count in result.counts.items():
        table.add_row(kind_name, str(count))
    console = _console()
    console.print(table)
    if result.secrets:
        written = "read from the environment; set these before `pulumi up`" if pulumi else "written as ${env.NAME}; set these before planning"
        console.print(f"Secrets are {_escape(written)}:")
        for variable, where in sorted(result.secrets.items()):
            console.print(f"  {variable}  ({_escape(where)})")
    console.print(f"Preview it with: cd {out} && pulumi preview" if pulumi else f"Check it with: prefect-provider plan {out}")


# --- show / state -----------------------------------------------------------------------------


@app.command()
@handle_errors
def show(
    plan_file: Annotated[Optional[Path], typer.Argument(help="A saved plan; without it, the state of DIR.")] = None,
    directory: Annotated[Path, typer.Option("--dir", help="Configuration directory (for the state).")] = Path("."),
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Show a saved plan, or the state."""
    from provider.plan import load_saved_plan

    if plan_file is not None:
        _show_plan(load_saved_plan(plan_file), as_json)
        return
    state = _read_state(directory)
    if as_json:
        typer.echo(json.dumps(state.to_json(), indent=2))
        return
    console = _console()
    for address, record in sorted(state.resources.items()):
        console.print(f"[bold]# {address}[/bold] (id {record.id})")
        console.print(json.dumps(record.attributes, indent=2))


def _read_state(directory: Path) -> State:
    return _state_session(directory).current_state()


def _state_session(directory: Path, api_url: str | None = None) -> Session:
    from provider.config import load_configuration
    from provider.errors import ConfigErrors

    try:
        config = load_configuration(directory)
    except ConfigErrors:
        config = None  # the state can be inspected even while the configuration is broken
    return open_session(directory, config, api_url)


@state_app.command("list")
@handle_errors
def state_list(directory: DirArg = Path(".")) -> None:
    """List the addresses in state."""
    for address in sorted(_read_state(directory).resources):
        typer.echo(address)


@state_app.command("show")
@handle_errors
def state_show(address: str, directory: DirArg = Path(".")) -> None:
    """Show one object in state."""
    from dataclasses import asdict

    from provider.errors import StateError

    record = _read_state(directory).resources.get(address)
    if record is None:
        raise StateError(f"{address} is not in state")
    typer.echo(json.dumps({"address": address, **asdict(record)}, indent=2))


def _edit_state(directory: Path, lock_timeout: str, edit, api_url: str | None = None) -> None:
    _state_session(directory, api_url).edit_state("state edit", parse_duration(lock_timeout), edit)


@state_app.command("rm")
@handle_errors
def state_rm(address: str, directory: DirArg = Path("."), lock_timeout: LockTimeout = "0s") -> None:
    """Stop managing an object: remove it from state without deleting it."""
    from provider.errors import StateError

    def edit(state):
        if state.resources.pop(address, None) is None:
            raise StateError(f"{address} is not in state")

    _edit_state(directory, lock_timeout, edit)
    typer.echo(f"Removed {address} from state (the object itself was not deleted).")


@state_app.command("mv")
@handle_errors
def state_mv(source: str, destination: str, directory: DirArg = Path("."), lock_timeout: LockTimeout = "0s") -> None:
    """Rename an address in state."""
    _edit_state(directory, lock_timeout, lambda state: state.rename(source, destination))
    typer.echo(f"Moved {source} to {destination}.")


@state_app.command("pull")
@handle_errors
def state_pull(directory: DirArg = Path(".")) -> None:
    """Print the state (from whichever backend the configuration names) as JSON."""
    typer.echo(json.dumps(_read_state(directory).to_json(), indent=2))


@state_app.command("push")
@handle_errors
def state_push(
    state_file: Annotated[Path, typer.Argument(help="A state file, e.g. from state pull.")],
    directory: DirArg = Path("."),
    force: Annotated[bool, typer.Option("--force", help="Overwrite even a state of another lineage or a newer serial.")] = False,
    lock_timeout: LockTimeout = "0s",
) -> None:
    """Write a state file to the configured backend (e.g. when moving from local to S3)."""
    from provider.errors import StateError
    from provider.state import read_state_file

    incoming = read_state_file(state_file)
    session = _state_session(directory)
    backend = session.backend
    with session.locked("state push", parse_duration(lock_timeout)):
        current = backend.read()
        if current and not force:
            if current.lineage != incoming.lineage:
                raise StateError(f"{backend.describe()} holds a state of another lineage ({current.lineage}); use --force to overwrite it")
            if current.serial > incoming.serial:
                raise StateError(f"{backend.describe()} is newer (serial {current.serial} > {incoming.serial}); use --force to overwrite it")
        backend.write(incoming)
    typer.echo(f"Pushed {state_file} to {backend.describe()} (serial {incoming.serial}).")


@app.command("force-unlock")
@handle_errors
def force_unlock(
    lock_id: Annotated[str, typer.Argument(help="The lock id, as the locked error names it.")],
    directory: DirArg = Path("."),
    force: Annotated[bool, typer.Option("--force", help="Do not ask for confirmation.")] = False,
) -> None:
    """Remove the state lock LOCK_ID left by a command that is gone (refuses any other lock)."""
    from provider.errors import ProviderError

    backend = _state_session(directory).backend
    if not force:
        if not sys.stdin.isatty():
            raise ProviderError("refusing to force-unlock without confirmation: not interactive; pass --force")
        _console().print(f"\n[bold]Do you really want to force-unlock {_escape(backend.describe())}?[/bold]\n"
                         "  A command that still holds the lock would then run unguarded (its state writes are "
                         "still checked).\n  Only 'yes' will be accepted to confirm.\n")
        if typer.prompt("  Enter a value", default="", show_default=False).strip() != "yes":
            raise ProviderError("force-unlock cancelled")
    holder = backend.force_unlock(lock_id)
    typer.echo(f"Unlocked {backend.describe()}: removed the lock of {holder.describe()}.")


# --- webhooks ---------------------------------------------------------------------------------


@webhooks_app.command("rotate")
@handle_errors
def webhooks_rotate(
    name: Annotated[str, typer.Argument(help="The webhook's name, as in webhooks.NAME.")],
    directory: DirArg = Path("."),
    auto_approve: Annotated[bool, typer.Option("--auto-approve", help="Do not ask for confirmation.")] = False,
    lock_timeout: LockTimeout = "0s",
    api_url: ApiUrl = None,
) -> None:
    """Give a managed webhook a new endpoint URL (e.g. after a leak); the old one stops working at once."""
    address = f"webhooks.{name}"
    _confirm(auto_approve, f"Rotate the endpoint of {address}? The current URL stops working at once.")
    outputs = _rotate(address, directory, lock_timeout, api_url)
    typer.echo(f"Rotated {address}: its endpoint is now {outputs['endpoint']}")


@service_accounts_app.command("rotate")
@handle_errors
def service_accounts_rotate(
    name: Annotated[str, typer.Argument(help="The service account's name, as in service_accounts.NAME.")],
    directory: DirArg = Path("."),
    auto_approve: Annotated[bool, typer.Option("--auto-approve", help="Do not ask for confirmation.")] = False,
    lock_timeout: LockTimeout = "0s",
    api_url: ApiUrl = None,
    keep_old_key_for: Annotated[str, typer.Option(
        "--keep-old-key-for", help="Let the old key work this long (e.g. 1h) while its users move to the new one; "
                                   "default 0: it stops at once.")] = "0s",
) -> None:
    """Issue a managed service account a new API key (e.g. after a leak); the old key stops working at once,
    or after --keep-old-key-for."""
    address = f"service_accounts.{name}"
    grace = round(parse_duration(keep_old_key_for))
    until = f"works for {keep_old_key_for.strip()} more" if grace else "stops working at once"
    _confirm(auto_approve, f"Rotate the API key of {address}? The current key {until}.")
    # The key, printed once and never stored.
    outputs = _rotate(address, directory, lock_timeout, api_url, old_key_expires_in_seconds=grace)
    typer.echo(f"Rotated the API key of {address} (the old key {until.replace('stops', 'stopped')}). "
               f"The new key, shown only now:\n{outputs['api_key']}")


def _rotate(address: str, directory: Path, lock_timeout: str, api_url: str | None, **options: Any) -> dict[str, Any]:
    """Under the state lock: rotate the credential of a managed Cloud object (the kind's `rotate`,
    given `options`), record what changes with it; the object's outputs after it."""
    from provider.engine import cloud_refusal
    from provider.errors import PlanError, StateError
    from resources import CATALOG

    kind = CATALOG[CATALOG.parse(address).kind]
    outputs: dict[str, Any] = {}
    session = _state_session(directory, api_url)  # in the workspace its `workspace:` names, if it does

    def edit(state: State) -> None:
        record = state.resources.get(address)
        if record is None:
            raise StateError(f"{address} is not in state")
        with session.connect() as client:
            if not client.connection.is_cloud:
                raise PlanError(cloud_refusal(kind.kind, client.connection))
            session.check_workspace(state, client)
            record.attributes = {**record.attributes, **kind.rotate(client, record.id, record.attributes, **options)}
        outputs.update(kind.outputs(record.name, record.id, record.attributes))

    session.edit_state("state edit", parse_duration(lock_timeout), edit)
    return outputs


# --- the embedded server ----------------------------------------------------------------------


@server_app.command("start")
@handle_errors
def server_start() -> None:
    """Start (or reuse) the embedded local Prefect server."""
    from provider.server import EmbeddedServer

    server = EmbeddedServer()
    with _console(stderr=True).status("Starting the embedded local Prefect server…"):
        info, started = server.ensure()
    typer.echo(f"{'Started' if started else 'Already running:'} {info.api_url} (pid {info.pid}, data in {server.data_dir})")


@server_app.command("stop")
@handle_errors
def server_stop() -> None:
    """Stop the embedded local Prefect server."""
    from provider.server import EmbeddedServer

    typer.echo(EmbeddedServer().stop().message)


@server_app.command("status")
@handle_errors
def server_status() -> None:
    """Say whether the embedded server runs; exit 1 when it does not."""
    from provider.server import EmbeddedServer

    server = EmbeddedServer()
    info = server.running()
    if info is None:
        stale = server.stale_reason()
        typer.echo(f"Not running ({stale}; `server stop` removes the stale file)." if stale else "Not running.")
        raise typer.Exit(1)
    typer.echo(f"Running: {info.api_url} (pid {info.pid})")


def main() -> Any:
    return app()


if __name__ == "__main__":
    main()
