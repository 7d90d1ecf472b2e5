"""Benchmarks against the physical limit and against `prefect deploy`:
`python tests/benchmarks/bench.py [--objects N] [--markdown]`.

Starts the pinned local Prefect server in a temporary directory (its scheduler service off, so
runs it would schedule for the benchmark's deployments do not compete for the database), builds a
workspace of about N objects (work pools with queues, variables, blocks with secrets and `$ref`s,
deployments with schedules and pull steps) and measures in one run:

- apply from empty, against a bare loop of the same create calls;
- a no-op plan, against a bare script listing the same kinds through the same filter endpoints
  (the physical limit; in process, and the CLI against the script run as a process of its own),
  and against a Terraform-provider-style refresh (one GET per object);
- requests per no-op plan and writes in a no-op apply;
- the same deployments written as a `prefect.yaml`: `prefect deploy --all` (first deploy and a
  redeploy of the unchanged file) against `prefect-provider apply` reading that prefect.yaml.

It prints a table (and `--markdown` prints the table in docs/performance.md). Not a test: it asserts only that
what it measures did what it should (a no-op plan has no changes).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
QUEUES_PER_POOL = 4
DEPLOYMENTS_PER_FLOW = 10
PULL_DIRECTORY = "/opt/bench"
PAGE = 200
PREFECT = Path(sys.executable).parent / "prefect"


# --- the workspace ------------------------------------------------------------------------------


@dataclass
class Workspace:
    """The benchmark's objects as plain specs, from which both the configuration files and the
    bare scripts' request bodies are made."""

    pools: dict[str, dict[str, Any]]
    variables: dict[str, dict[str, Any]]
    blocks: dict[str, dict[str, Any]]
    deployments: dict[str, dict[str, Any]]

    @classmethod
    def of_size(cls, objects: int) -> Workspace:
        """About `objects` in all: 1/4 deployments, 1/10 blocks, 1/20 pools and queues, the rest variables."""
        pool_count = max(1, objects // 20 // (1 + QUEUES_PER_POOL))
        pools = {
            f"bench-pool-{p}": {
                "type": "process",
                "base_job_template": {},
                "queues": {f"q{q}": {"priority": q + 2, "concurrency_limit": q + 1} for q in range(QUEUES_PER_POOL)},
            }
            for p in range(pool_count)
        }
        block_count = max(4, objects // 10)
        blocks: dict[str, dict[str, Any]] = {}
        for i in range(block_count // 4):  # half secrets, a quarter credentials, a quarter buckets using them
            blocks[f"secret/bench-secret-{2 * i}"] = {"data": {"value": f"bench-secret-value-{2 * i}"}}
            blocks[f"secret/bench-secret-{2 * i + 1}"] = {"data": {"value": f"bench-secret-value-{2 * i + 1}"}}
            blocks[f"aws-credentials/bench-aws-{i}"] = {
                "data": {"aws_access_key_id": f"AKIABENCH{i:08d}", "aws_secret_access_key": f"bench-key-{i}", "region_name": "us-east-1"}
            }
            blocks[f"s3-bucket/bench-bucket-{i}"] = {
                "data": {"bucket_name": f"bench-bucket-{i}", "credentials": {"$ref": f"aws-credentials/bench-aws-{i}"}}
            }
        deployments = {}
        for i in range(max(1, objects // 4)):
            flow = f"bench-flow-{i // DEPLOYMENTS_PER_FLOW}"
            pool = f"bench-pool-{i % pool_count}"
            schedules = [{"slug": "nightly", "cron": f"{i % 60} 2 * * *", "timezone": "America/Chicago"}]
            if i % 2:
                schedules.append({"slug": "hourly", "interval": 3600, "parameters": {"incremental": True}})
            deployments[f"{flow}/dep-{i}"] = {
                "entrypoint": f"flows.py:flow_{i // DEPLOYMENTS_PER_FLOW}",
                "tags": ["bench"],
                "work_pool": pool,
                "work_queue": f"q{i % QUEUES_PER_POOL}",
                "parameters": {"n": i, "incremental": False},
                "job_variables": {"env": {"TIER": "bench"}},
                "pull_steps": [{"prefect.deployments.steps.set_working_directory": {"directory": PULL_DIRECTORY}}],
                "schedules": schedules,
            }
        taken = len(pools) * (1 + QUEUES_PER_POOL) + len(blocks) + len(deployments)
        variables = {f"bench_var_{i}": {"value": {"n": i, "tier": "bench"}, "tags": ["bench"]} for i in range(max(0, objects - taken))}
        return cls(pools, variables, blocks, deployments)

    @property
    def counts(self) -> dict[str, int]:
        return {
            "work_pools": len(self.pools),
            "work_queues": len(self.pools) * QUEUES_PER_POOL,
            "variables": len(self.variables),
            "blocks": len(self.blocks),
            "deployments": len(self.deployments),
        }

    @property
    def flows(self) -> list[str]:
        return sorted({name.split("/")[0] for name in self.deployments})

    def write_config(self, directory: Path) -> None:
        """One file per kind, as an infra repo would have it."""
        for kind, specs in (("work_pools", self.pools), ("variables", self.variables),
                            ("blocks", self.blocks), ("deployments", self.deployments)):
            dump_yaml({kind: specs}, directory / f"{kind}.yaml")

    def write_prefect_yaml(self, directory: Path, flow_prefix: str) -> None:
        """The same deployments as a `prefect.yaml` project, with a flows file: its flows are named
        `FLOW_PREFIX-N`, so the objects made from it are apart from the workspace's."""
        entries = []
        for name, spec in self.deployments.items():
            entries.append({
                "name": name.split("/")[1],
                "entrypoint": spec["entrypoint"],
                "tags": spec["tags"],
                "parameters": spec["parameters"],
                "work_pool": {"name": spec["work_pool"], "work_queue_name": spec["work_queue"], "job_variables": spec["job_variables"]},
                "schedules": spec["schedules"],
            })
        dump_yaml({"name": "bench", "pull": self.deployments[next(iter(self.deployments))]["pull_steps"],
                   "deployments": entries}, directory / "prefect.yaml")
        flows = ["from prefect import flow\n"]
        for index in range(len(self.flows)):
            flows.append(f'\n@flow(name="{flow_prefix}-{index}")\ndef flow_{index}(n: int = 0, incremental: bool = False):\n    pass\n')
        (directory / "flows.py").write_text("".join(flows))


def dump_yaml(data: dict[str, Any], path: Path) -> None:
    from ruamel.yaml import YAML

    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    with path.open("w") as file:
        yaml.dump(data, file)


# --- the bare scripts (what a hand-written client could do at best) -----------------------------------


def bare_listing(api: str) -> int:
    """The physical limit of a refresh: every kind through its filter endpoint, 200 a page, in one
    sequential loop that does nothing with the answers. Deployments name their flow by id, so flows
    are listed too; blocks are read with their secrets, as a drift check needs them."""
    count = 0
    with httpx.Client(base_url=api + "/") as http:
        for path, body in (("work_pools/filter", {}), ("work_queues/filter", {}), ("variables/filter", {}),
                           ("block_documents/filter", {"include_secrets": True}), ("deployments/filter", {}),
                           ("flows/filter", {})):
            offset = 0
            while True:
                page = http.post(path, json={**body, "limit": PAGE, "offset": offset}).json()
                count += len(page)
                if len(page) < PAGE:
                    break
                offset += PAGE
    return count


def per_object_refresh(api: str, workspace: Workspace) -> int:
    """How a Terraform-provider-style refresh reads: one GET per object."""
    gets = []
    for pool, spec in workspace.pools.items():
        gets.append(f"work_pools/{pool}")
        gets += [f"work_pools/{pool}/queues/{queue}" for queue in spec["queues"]]
    gets += [f"variables/name/{name}" for name in workspace.variables]
    gets += [f"block_types/slug/{name.split('/')[0]}/block_documents/name/{name.split('/')[1]}?include_secrets=true"
             for name in workspace.blocks]
    gets += [f"deployments/name/{name}" for name in workspace.deployments]
    with httpx.Client(base_url=api + "/") as http:
        for path in gets:
            http.get(path).raise_for_status()
    return len(gets)


def bare_creates(api: str, workspace: Workspace, prefix: str) -> None:
    """The fewest create calls for the same objects (names prefixed `prefix`), in a bare sequential
    loop: block types and schemas looked up once per type, each flow created once, schedules sent
    inline with their deployment. Like any client of the SQLite-backed server, it retries the
    503s of write contention."""
    with httpx.Client(base_url=api + "/", timeout=30) as http:
        def post(path: str, body: Any) -> Any:
            while (response := http.post(path, json=body)).status_code == 503:
                time.sleep(0.05)
            response.raise_for_status()
            return response.json()

        for pool, spec in workspace.pools.items():
            post("work_pools/", {"name": prefix + pool, "type": spec["type"], "base_job_template": spec["base_job_template"]})
            for queue, queue_spec in spec["queues"].items():
                post(f"work_pools/{prefix}{pool}/queues", {"name": queue, **queue_spec})
        for name, spec in workspace.variables.items():
            post("variables/", {"name": f"{prefix}{name}".replace("-", "_"), **spec})
        schema_ids: dict[str, tuple[str, str]] = {}
        document_ids: dict[str, str] = {}
        for name, spec in workspace.blocks.items():
            slug, document = name.split("/")
            if slug not in schema_ids:
                type_id = http.get(f"block_types/slug/{slug}").json()["id"]
                schema = post("block_schemas/filter", {"block_schemas": {"block_type_id": {"any_": [type_id]}}, "limit": 1})[0]
                schema_ids[slug] = (type_id, schema["id"])
            data = {key: {"$ref": {"block_document_id": document_ids[value["$ref"]]}} if isinstance(value, dict) else value
                    for key, value in spec["data"].items()}
            type_id, schema_id = schema_ids[slug]
            body = {"name": prefix + document, "block_type_id": type_id, "block_schema_id": schema_id, "data": data}
            document_ids[name] = post("block_documents/", body)["id"]
        flow_ids = {flow: post("flows/", {"name": prefix + flow})["id"] for flow in workspace.flows}
        for name, spec in workspace.deployments.items():
            flow, deployment = name.split("/")
            schedules = []
            for schedule in spec["schedules"]:
                timing = {key: schedule[key] for key in ("cron", "interval", "timezone") if key in schedule}
                schedules.append({"slug": schedule["slug"], "schedule": timing, "parameters": schedule.get("parameters", {})})
            post("deployments/", {
                "name": deployment, "flow_id": flow_ids[flow], "entrypoint": spec["entrypoint"], "tags": spec["tags"],
                "parameters": spec["parameters"], "job_variables": spec["job_variables"], "pull_steps": spec["pull_steps"],
                "work_pool_name": prefix + spec["work_pool"], "work_queue_name": spec["work_queue"], "schedules": schedules,
            })


# --- measuring ------------------------------------------------------------------------------------


def timed(fn: Callable[[], Any], repeat: int = 1) -> tuple[float, Any]:
    """The median wall time of `repeat` runs, and the last result."""
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def run_command(args: list[str], env: dict[str, str], cwd: Path | None = None, expect: str | None = None) -> subprocess.CompletedProcess:
    process = subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True)
    if process.returncode != 0 or (expect and expect not in process.stdout):
        raise RuntimeError(f"{' '.join(args)} failed (exit {process.returncode}):\n{process.stdout[-3000:]}\n{process.stderr[-3000:]}")
    return process


@dataclass
class Row:
    measurement: str
    ours: str
    baseline: str
    ratio: str
    goal: str
    met: bool | None = None

    def cells(self) -> list[str]:
        mark = {True: " ✓", False: " ✗", None: ""}[self.met]
        return [self.measurement, self.ours, self.baseline, self.ratio, self.goal + mark]


def run(tmp: Path, api: str, objects: int) -> tuple[list[Row], str]:
    from provider.client import Connection, PrefectClient
    from provider.config import load_configuration
    from provider.engine import apply_plan, make_plan
    from provider.state import LocalBackend, State, StateWriter

    workspace = Workspace.of_size(objects)
    config_dir = tmp / "infra"
    config_dir.mkdir()
    workspace.write_config(config_dir)
    config = load_configuration(config_dir)
    backend = LocalBackend(config_dir / "prefect-provider.state.json")
    kinds = ", ".join(f"{count} {kind}" for kind, count in workspace.counts.items())
    rows: list[Row] = []
    env = {**os.environ, "PREFECT_API_URL": api, "PREFECT_HOME": str(tmp / "prefect-home"), "NO_COLOR": "1"}

    # apply from empty (the bare loop runs later, once the listings below have seen only this workspace)
    state = State()
    with PrefectClient(Connection(api)) as client:
        def apply_all():
            plan = make_plan(config, state, client, new_state=True)
            return apply_plan(plan, client, StateWriter(backend, state))
        apply_time, result = timed(apply_all)
        assert result.ok, result.failed

    # no-op plan vs the physical limit and a per-object refresh
    with PrefectClient(Connection(api)) as client:
        state = backend.read()
        plan_time, plan = timed(lambda: make_plan(config, state, client), repeat=5)
        reads = client.counter.reads / 5
        assert not plan.pending, "the benchmark's no-op plan has changes"
    limit_time, listed = timed(lambda: bare_listing(api), repeat=5)
    refresh_time, gets = timed(lambda: per_object_refresh(api, workspace), repeat=3)
    pages = sum(-(-count // PAGE) for count in workspace.counts.values())

    # the CLI end to end, against the bare listing as a script of its own; a no-op apply sends no writes
    cli = [sys.executable, "-m", "provider"]
    cli_time, _ = timed(lambda: run_command([*cli, "plan", str(config_dir)], env, expect="No changes."), repeat=3)
    script_time, _ = timed(lambda: run_command([sys.executable, __file__, "--bare-listing", api], env), repeat=3)
    with PrefectClient(Connection(api)) as client:
        state = backend.read()
        plan = make_plan(config, state, client)
        apply_plan(plan, client, StateWriter(backend, state))
        writes = client.counter.writes
    help_time, _ = timed(lambda: run_command([*cli, "--help"], env), repeat=5)

    bare_time, _ = timed(lambda: bare_creates(api, workspace, "raw-"))

    # the deployments as a prefect.yaml: `prefect deploy --all` against prefect-provider reading it
    deploy_dir, provider_dir = tmp / "prefect-deploy", tmp / "prefect-provider"
    for directory, flow_prefix in ((deploy_dir, "deployed-flow"), (provider_dir, "provider-flow")):
        directory.mkdir()
        workspace.write_prefect_yaml(directory, flow_prefix)
    deploy = [str(PREFECT), "--no-prompt", "deploy", "--all"]
    deploy_first, _ = timed(lambda: run_command(deploy, env, cwd=deploy_dir))
    deploy_again, _ = timed(lambda: run_command(deploy, env, cwd=deploy_dir))
    ours = [*cli, "apply", str(provider_dir), "--auto-approve"]
    ours_first, _ = timed(lambda: run_command(ours, env, expect="Apply complete!"))
    ours_again, _ = timed(lambda: run_command(ours, env, expect="No changes."), repeat=3)

    n = len(workspace.deployments)
    rows += [
        Row("apply from empty (in process)", f"{apply_time:.2f} s", f"{bare_time:.2f} s (bare create loop)",
            f"{apply_time / bare_time:.2f}×", "≤ 1.3×", apply_time / bare_time <= 1.3),
        Row("no-op plan (in process)", f"{plan_time * 1000:.0f} ms", f"{limit_time * 1000:.0f} ms (bare filter listing)",
            f"{plan_time / limit_time:.2f}×", "≤ 1.5×", plan_time / limit_time <= 1.5),
        Row("Terraform-provider-style refresh", f"{plan_time * 1000:.0f} ms (no-op plan)", f"{refresh_time * 1000:.0f} ms ({gets} GETs)",
            f"{refresh_time / plan_time:.1f}× faster", "—"),
        Row("requests per no-op plan", f"{reads:.0f}", f"{len(workspace.counts)} kinds, {pages} pages ({listed} objects listed)",
            "—", "≈ kinds + pages", reads <= 2 * (len(workspace.counts) + pages)),
        Row("writes in a no-op apply", str(writes), "—", "—", "0", writes == 0),
        Row("no-op plan (CLI: start-up, YAML, plan, output)", f"{cli_time:.2f} s", f"{script_time:.2f} s (bare listing script)",
            f"{cli_time / script_time:.2f}×", "≤ 1.5×", cli_time / script_time <= 1.5),
        Row("CLI start-up (`--help`)", f"{help_time * 1000:.0f} ms", "—", "—", "no `import prefect`"),
        Row(f"first deploy of {n} deployments from prefect.yaml (CLI)", f"{ours_first:.2f} s",
            f"{deploy_first:.2f} s (`prefect deploy --all`)", f"{deploy_first / ours_first:.1f}× faster", "—"),
        Row("redeploy, prefect.yaml unchanged (CLI)", f"{ours_again:.2f} s", f"{deploy_again:.2f} s (`prefect deploy --all`)",
            f"{deploy_again / ours_again:.1f}× faster", "≥ 10× faster", deploy_again / ours_again >= 10),
    ]
    return rows, kinds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--objects", type=int, default=1000)
    parser.add_argument("--markdown", action="store_true", help="print the table for docs/performance.md")
    parser.add_argument("--bare-listing", metavar="API_URL", help=argparse.SUPPRESS)  # the bare script, run as a process
    args = parser.parse_args()
    if args.bare_listing:
        print(bare_listing(args.bare_listing))
        return
    sys.path.insert(0, str(ROOT))
    from provider.server import EmbeddedServer

    if not PREFECT.exists():
        sys.exit(f"{PREFECT} not found: install the server extra (pip install -e '.[server]')")

    with tempfile.TemporaryDirectory() as tmp:
        server = EmbeddedServer(Path(tmp) / "server")
        # The scheduler would fill the database with runs of the benchmark's schedules meanwhile.
        os.environ["PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED"] = "false"
        info = server.start()
        try:
            rows, kinds = run(Path(tmp), info.api_url, args.objects)
        finally:
            server.stop()
    machine = (f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
               "prefect 3.8.8 server on SQLite on the same machine")
    if args.markdown:
        print(f"Measured on {machine}; {args.objects} objects ({kinds}).\n")
        print("| measurement | prefect-provider | baseline | ratio | goal |")
        print("|---|---|---|---|---|")
        for row in rows:
            print("| " + " | ".join(row.cells()) + " |")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"prefect-provider benchmark: {args.objects} objects ({kinds})\n{machine}")
    for column in ("measurement", "prefect-provider", "baseline", "ratio", "goal"):
        table.add_column(column)
    for row in rows:
        table.add_row(*row.cells())
    Console().print(table)


if __name__ == "__main__":
    main()
