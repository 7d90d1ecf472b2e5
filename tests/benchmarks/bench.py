"""Benchmarks against the physical limit and against `prefect deploy`:
`python tests/benchmarks/bench.py [--db sqlite,postgres] [--objects N] [--workers N] [--markdown]`.

For each database, starts the pinned local Prefect server in a temporary directory on SQLite or on
a throwaway PostgreSQL cluster (tests/pg.py; one API worker, or `--workers N` with Redis), its
scheduler service off so runs it would schedule for the benchmark's deployments do not compete
for the database, builds a workspace of about N objects (work pools with queues, variables, blocks with secrets and `$ref`s,
deployments with schedules and pull steps) and measures in one run:

- apply from empty, against a bare loop of the same create calls (a sample of BASELINE_SAMPLE
  objects, scaled up, for larger workspaces: the loop is sequential, its time linear in the objects);
- a no-op plan, against a bare script listing the same kinds through the same filter endpoints
  (the physical limit; in process, and the CLI against the script run as a process of its own),
  and against a Terraform-provider-style refresh (one GET per object);
- requests per no-op plan, per `plan --target` of one deployment, and writes in a no-op apply;
- peak memory (max RSS) of the CLI's no-op plan, and the CLI's `--help` start-up;
- the state writer: persisting K changed records of the full state, for growing K;
- the same deployments (at most DEPLOY_CAP of them) written as a `prefect.yaml`: `prefect deploy
  --all` (first deploy and a redeploy of the unchanged file) against `prefect-provider apply`
  reading that prefect.yaml.

`--cloud N` measures Prefect Cloud administration instead, against the loopback Cloud fake
(tests/cloud_fake.py) in front of the server: N teams with members, N service accounts, a role
granted to all of them, N work pools with access lists and N deployments with SLAs. The fake
answers in microseconds where Cloud takes tens of milliseconds, so its requests are the number to
read, not its times.

It prints a table (and `--markdown` prints the table in docs/performance.md). Not a test: it asserts only that
what it measures did what it should (a no-op plan has no changes).
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import signal
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
QUEUES_PER_POOL = 2
DEPLOYMENTS_PER_FLOW = 10
DEPLOY_CAP = 100  # `prefect deploy` takes about 0.5 s a deployment here: the prefect.yaml part uses at most this many
STATE_CHANGES = (10, 100, 1000)
# Above this size the two sequential per-object baselines (bare create loop, one GET per object) run
# on a workspace of this many objects with the same proportions and are scaled up by the object count.
BASELINE_SAMPLE = 2000
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
        """About `objects` in all: 1/25 deployments, 1/20 blocks, 1/200 pools (each with its queues),
        the rest variables (at 10,000: 400 deployments, 500 blocks, 50 pools, 100 queues, 8,950 variables)."""
        pool_count = max(1, objects // 200)
        pools = {
            f"bench-pool-{p}": {
                "type": "process",
                "base_job_template": {},
                "queues": {f"q{q}": {"priority": q + 2, "concurrency_limit": q + 1} for q in range(QUEUES_PER_POOL)},
            }
            for p in range(pool_count)
        }
        block_count = max(4, objects // 20)
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
        for i in range(max(1, objects // 25)):
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

    def write_prefect_yaml(self, directory: Path, flow_prefix: str) -> int:
        """The first DEPLOY_CAP deployments as a `prefect.yaml` project, with a flows file: its flows
        are named `FLOW_PREFIX-N`, so the objects made from it are apart from the workspace's."""
        entries = []
        for name, spec in list(self.deployments.items())[:DEPLOY_CAP]:
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
        return len(entries)


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
    with httpx.Client(base_url=api + "/", timeout=120) as http:
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
    with httpx.Client(base_url=api + "/", timeout=120) as http:
        for path in gets:
            http.get(path).raise_for_status()
    return len(gets)


def bare_creates(api: str, workspace: Workspace, prefix: str) -> None:
    """The fewest create calls for the same objects (names prefixed `prefix`), in a bare sequential
    loop: block types and schemas looked up once per type, each flow created once, schedules sent
    inline with their deployment. Like any client of the SQLite-backed server, it retries the
    503s of write contention."""
    with httpx.Client(base_url=api + "/", timeout=120) as http:
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


def cli_peak_memory(args: list[str], env: dict[str, str]) -> float:
    """The peak resident memory of a command in its own process, in MB (its max RSS from wait4)."""
    process = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed (exit {process.returncode})")
    return usage.ru_maxrss / 1024


def start_up_times(args: list[str], env: dict[str, str], repeat: int = 20) -> tuple[float, float]:
    """Median wall and CPU (user + system) seconds of a short command: on a machine shared with other
    work the wall time is mostly waiting for a core, the CPU time is what the command costs.

    Measured as an installed package runs, from bytecode: with PYTHONDONTWRITEBYTECODE set (as in
    some development shells) every start compiles the CLI module from source, 15-50 ms more here."""
    env = {name: value for name, value in env.items() if name != "PYTHONDONTWRITEBYTECODE"}
    # The first run writes the bytecode.
    subprocess.run(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    walls, cpus = [], []
    for _ in range(repeat):
        start = time.perf_counter()
        process = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _, _, usage = os.wait4(process.pid, 0)
        walls.append(time.perf_counter() - start)
        cpus.append(usage.ru_utime + usage.ru_stime)
    return statistics.median(walls), statistics.median(cpus)


def state_write_times(tmp: Path, backend_path: Path) -> dict[int, float]:
    """Seconds to persist K changed records (one journal append each, then the compacting write)
    of the benchmark's full state, for each K in STATE_CHANGES; on a copy of the state file."""
    from provider.state import LocalBackend, StateWriter

    times = {}
    for changes in STATE_CHANGES:
        path = tmp / f"state-{changes}" / backend_path.name
        path.parent.mkdir()
        path.write_bytes(backend_path.read_bytes())
        backend = LocalBackend(path)
        state = backend.read()
        records = list(state.resources.items())[:changes]
        start = time.perf_counter()
        writer = StateWriter(backend, state)
        for address, record in records:
            writer.put(address, record)
        writer.close()
        times[changes] = time.perf_counter() - start
    return times


def warm_up_encryption_key(api: str) -> None:
    """Prefect 3.8.8 makes its encryption key on the first write of a block with secrets; on
    PostgreSQL concurrent first writes race for it and all but one fail with 409 (a server bug, see
    docs/performance.md). Write and delete one secret block first, as any server in use has done."""
    with httpx.Client(base_url=api + "/", timeout=120) as http:
        type_id = http.get("block_types/slug/secret").raise_for_status().json()["id"]
        schema = http.post("block_schemas/filter", json={"block_schemas": {"block_type_id": {"any_": [type_id]}}, "limit": 1}).json()[0]
        document = http.post("block_documents/", json={"name": "bench-warm-up", "block_type_id": type_id,
                                                       "block_schema_id": schema["id"], "data": {"value": "x"}}).raise_for_status()
        http.delete(f"block_documents/{document.json()['id']}").raise_for_status()


def run(tmp: Path, api: str, objects: int, database: str) -> tuple[list[Row], str]:
    from provider.client import Connection, PrefectClient
    from provider.config import load_configuration
    from provider.engine import PlanOptions, apply_plan, make_plan
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
    step = progress(database)

    warm_up_encryption_key(api)

    # apply from empty (the bare loop runs later, once the listings below have seen only this workspace)
    step("apply from empty")
    state = State()
    with PrefectClient(Connection(api)) as client:
        def apply_all():
            plan = make_plan(config, state, client, new_state=True)
            return apply_plan(plan, client, StateWriter(backend, state))
        apply_time, result = timed(apply_all)
        assert result.ok, result.failed

    # no-op plan vs the physical limit and a per-object refresh
    step(f"no-op plan (apply from empty took {apply_time:.1f} s)")
    repeat = 3 if objects <= BASELINE_SAMPLE else 2
    with PrefectClient(Connection(api)) as client:
        state = backend.read()
        plan_time, plan = timed(lambda: make_plan(config, state, client), repeat=repeat)
        reads = client.counter.reads / repeat
        assert not plan.pending, "the benchmark's no-op plan has changes"
    limit_time, listed = timed(lambda: bare_listing(api), repeat=repeat)
    # The sequential baselines on a sample of the same shape (a prefix of the same names), scaled up.
    sample = Workspace.of_size(min(objects, BASELINE_SAMPLE))
    scale = sum(workspace.counts.values()) / sum(sample.counts.values())
    step(f"per-object refresh (sample of {sum(sample.counts.values())} objects, ×{scale:.1f})")
    refresh_time, gets = timed(lambda: per_object_refresh(api, sample))
    refresh_time, gets = refresh_time * scale, round(gets * scale)
    pages = sum(-(-count // PAGE) for count in workspace.counts.values())

    # plan --target of one deployment: what it needs, not the whole workspace
    target = f"deployments.{next(iter(workspace.deployments))}"
    with PrefectClient(Connection(api)) as client:
        make_plan(config, backend.read(), client, PlanOptions(targets=[target]))
        target_requests = client.counter.reads + client.counter.writes

    # the CLI end to end, against the bare listing as a script of its own; a no-op apply sends no writes
    step(f"CLI (no-op plan {plan_time:.2f} s, bare listing {limit_time:.2f} s, per-object {refresh_time:.1f} s, "
         f"`plan --target` {target_requests} requests)")
    cli = [sys.executable, "-m", "provider"]
    cli_time, _ = timed(lambda: run_command([*cli, "plan", str(config_dir)], env, expect="No changes."), repeat=repeat)
    script_time, _ = timed(lambda: run_command([sys.executable, __file__, "--bare-listing", api], env), repeat=repeat)
    peak_mb = cli_peak_memory([*cli, "plan", str(config_dir)], env)
    with PrefectClient(Connection(api)) as client:
        state = backend.read()
        plan = make_plan(config, state, client)
        apply_plan(plan, client, StateWriter(backend, state))
        writes = client.counter.writes
    help_wall, help_cpu = start_up_times([*cli, "--help"], env)
    state_times = state_write_times(tmp, backend.path)

    step(f"bare create loop (CLI plan {cli_time:.2f} s vs script {script_time:.2f} s, {peak_mb:.0f} MB, "
         f"--help {help_cpu * 1000:.0f} ms CPU, state writes {state_times})")
    bare_time, _ = timed(lambda: bare_creates(api, sample, "raw-"))
    bare_time *= scale
    bare_label = "bare create loop" + (f", {sum(sample.counts.values())} objects ×{scale:.1f}" if scale > 1 else "")

    # the deployments as a prefect.yaml: `prefect deploy --all` against prefect-provider reading it
    step(f"prefect deploy (bare create loop {bare_time:.1f} s)")
    deploy_dir, provider_dir = tmp / "prefect-deploy", tmp / "prefect-provider"
    for directory, flow_prefix in ((deploy_dir, "deployed-flow"), (provider_dir, "provider-flow")):
        directory.mkdir()
        n = workspace.write_prefect_yaml(directory, flow_prefix)
    deploy = [str(PREFECT), "--no-prompt", "deploy", "--all"]
    deploy_first, _ = timed(lambda: run_command(deploy, env, cwd=deploy_dir))
    deploy_again, _ = timed(lambda: run_command(deploy, env, cwd=deploy_dir))
    ours = [*cli, "apply", str(provider_dir), "--auto-approve"]
    ours_first, _ = timed(lambda: run_command(ours, env, expect="Apply complete!"))
    ours_again, _ = timed(lambda: run_command(ours, env, expect="No changes."), repeat=3)

    # Parallel writes pay off where the database takes them (PostgreSQL); SQLite serializes them.
    apply_goal = 0.6 if database == "postgres" else 1.3
    small, large = STATE_CHANGES[0], STATE_CHANGES[-1]
    per_change = (state_times[large] - state_times[small]) / (large - small)
    fixed = state_times[small] - small * per_change
    state_cells = ", ".join(f"{k}: {state_times[k] * 1000:.0f} ms" for k in STATE_CHANGES)
    rows += [
        Row("apply from empty (in process)", f"{apply_time:.2f} s", f"{bare_time:.2f} s ({bare_label})",
            f"{apply_time / bare_time:.2f}×", f"≤ {apply_goal}×", apply_time / bare_time <= apply_goal),
        Row("no-op plan (in process)", f"{plan_time * 1000:.0f} ms", f"{limit_time * 1000:.0f} ms (bare filter listing)",
            f"{plan_time / limit_time:.2f}×", "≤ 1.2×", plan_time / limit_time <= 1.2),
        Row("Terraform-provider-style refresh", f"{plan_time * 1000:.0f} ms (no-op plan)",
            f"{refresh_time * 1000:.0f} ms ({gets} GETs{', scaled from a sample' if scale > 1 else ''})",
            f"{refresh_time / plan_time:.1f}× faster", "—"),
        Row("requests per no-op plan", f"{reads:.0f}", f"{len(workspace.counts)} kinds, {pages} pages ({listed} objects listed)",
            "—", "≈ kinds + pages", reads <= 2 * (len(workspace.counts) + pages)),
        Row("requests per `plan --target` of one deployment", str(target_requests), "—", "—", "≤ 5", target_requests <= 5),
        Row("writes in a no-op apply", str(writes), "—", "—", "0", writes == 0),
        Row("no-op plan (CLI: start-up, YAML, plan, output)", f"{cli_time:.2f} s", f"{script_time:.2f} s (bare listing script)",
            f"{cli_time / script_time:.2f}×", "≤ 1.5×", cli_time / script_time <= 1.5),
        Row("peak memory of the no-op plan (CLI, max RSS)", f"{peak_mb:.0f} MB", "—", "—", "≤ 300 MB", peak_mb <= 300),
        Row("CLI start-up (`--help`): CPU time (wall time)", f"{help_cpu * 1000:.0f} ms ({help_wall * 1000:.0f} ms)", "—", "—",
            "≤ 150 ms", help_cpu <= 0.150),
        Row("state writes for K changed objects (records + compaction)", state_cells, "—",
            f"{fixed * 1000:.0f} ms + {per_change * 1000:.2f} ms × K", "linear in K",
            state_times[large] <= 3 * (fixed + large * per_change) if per_change > 0 else True),
        Row(f"first deploy of {n} deployments from prefect.yaml (CLI)", f"{ours_first:.2f} s",
            f"{deploy_first:.2f} s (`prefect deploy --all`)", f"{deploy_first / ours_first:.1f}× faster", "—"),
        Row("redeploy, prefect.yaml unchanged (CLI)", f"{ours_again:.2f} s", f"{deploy_again:.2f} s (`prefect deploy --all`)",
            f"{deploy_again / ours_again:.1f}× faster", "≥ 10× faster", deploy_again / ours_again >= 10),
    ]
    return rows, kinds


def cloud_administration(tmp: Path, api: str, count: int) -> list[Row]:
    """Apply, no-op plan and no-op apply of `count` of each Cloud administration object (see the
    module's docstring), with the requests each sends, by route, counted by the Cloud fake."""
    from tests.cloud_fake import CloudFake

    people = ["ada.lovelace@example.com", "grace.hopper@example.com"]
    config = {
        "service_accounts": {f"bench-sa-{i}": {} for i in range(count)},
        "teams": {f"bench-team-{i}": {"members": {"users": people, "service_accounts": [f"bench-sa-{i}"]}} for i in range(count)},
        "workspace_roles": {"bench-deployer": {"scopes": ["run_deployments"], "inherited_role": "Viewer"}},
        "workspace_access": {"bench": {"workspace_role": "bench-deployer", "teams": [f"bench-team-{i}" for i in range(count)],
                                       "service_accounts": [f"bench-sa-{i}" for i in range(count)]}},
        "work_pools": {f"bench-cloud-pool-{i}": {"type": "process"} for i in range(count)},
        "object_access": {f"work_pools.bench-cloud-pool-{i}": {"manage": {"teams": [f"bench-team-{i}"]}, "view": {"everyone": True}}
                          for i in range(count)},
        "deployments": {f"bench-cloud-flow/dep-{i}": {"entrypoint": "flows.py:flow", "work_pool": f"bench-cloud-pool-{i}"}
                        for i in range(count)},
        "resource_slas": {f"bench-cloud-flow/dep-{i}": {"slas": [{"name": "too-long", "duration": 600}]} for i in range(count)},
    }
    config_dir = tmp / "cloud"
    config_dir.mkdir()
    dump_yaml(config, config_dir / "main.yaml")
    objects = sum(len(specs) for specs in config.values())
    step = progress(f"cloud, {objects} objects")
    with CloudFake(api, api_key="pnu_bench", read_only_key="pnu_bench_read") as cloud:
        env = {**os.environ, "PREFECT_API_URL": cloud.api_url, "PREFECT_API_KEY": cloud.api_key,
               "PREFECT_HOME": str(tmp / "prefect-home"), "NO_COLOR": "1"}
        cli = [sys.executable, "-m", "provider"]

        def sent(command: list[str], expect: str) -> tuple[float, dict[str, int]]:
            before = dict(cloud.requests)
            elapsed, _ = timed(lambda: run_command(command, env, expect=expect))
            counted: dict[str, int] = {}
            for route, n in cloud.requests.items():
                if n > before.get(route, 0):  # a pool's routes hold its name, not an id
                    generic = re.sub(r"/work_pools/[^/]+/access", "/work_pools/{name}/access", route)
                    counted[generic] = counted.get(generic, 0) + n - before.get(route, 0)
            return elapsed, counted

        step("apply from empty")
        apply_time, applied = sent([*cli, "apply", str(config_dir), "--auto-approve"], "Apply complete!")
        step(f"no-op plan (apply took {apply_time:.1f} s)")
        plan_time, planned = sent([*cli, "plan", str(config_dir)], "No changes.")
        _, again = sent([*cli, "apply", str(config_dir), "--auto-approve"], "No changes.")
    writes = sum(n for route, n in again.items() if not route.startswith("GET ") and not route.endswith("/filter"))
    reads = sum(planned.values())
    per_object = sorted((n, route) for route, n in planned.items() if n >= count)
    bulk = reads - sum(n for n, _ in per_object)
    return [
        Row(f"Cloud: apply from empty ({objects} objects, CLI)", f"{apply_time:.2f} s ({sum(applied.values())} requests)",
            "—", "—", "—"),
        Row("Cloud: requests per no-op plan", str(reads),
            ", ".join(f"{n} `{route}`" for n, route in per_object) + f" + {bulk} bulk reads", "—",
            f"≤ {3 * count + 30} (one read per list Cloud has no bulk read for)", reads <= 3 * count + 30),
        Row("Cloud: no-op plan (CLI, against the fake)", f"{plan_time:.2f} s", "—", "—", "—"),
        Row("Cloud: writes in a no-op apply", str(writes), "—", "—", "0", writes == 0),
    ]


def progress(database: str) -> Callable[[str], None]:
    """Progress on stderr (a 10,000-object run takes a while), with the time since the start."""
    start = time.monotonic()
    return lambda what: print(f"[{database} +{time.monotonic() - start:.0f}s] {what}", file=sys.stderr, flush=True)


def machine_load() -> str:
    return "load average at the end {:.1f} / {:.1f} / {:.1f} (1/5/15 min)".format(*os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--objects", type=int, default=1000)
    parser.add_argument("--db", default="sqlite", help="comma-separated: sqlite, postgres (one table each)")
    parser.add_argument("--workers", type=int, default=1,
                        help="API worker processes of the PostgreSQL server "
                             "(several use a throwaway Redis; needs prefect-redis)")
    parser.add_argument("--markdown", action="store_true", help="print the tables for docs/performance.md")
    parser.add_argument("--cloud", type=int, metavar="N",
                        help="measure Cloud administration (N of each object) against the Cloud fake instead")
    parser.add_argument("--bare-listing", metavar="API_URL", help=argparse.SUPPRESS)  # the bare script, run as a process
    args = parser.parse_args()
    if args.bare_listing:
        print(bare_listing(args.bare_listing))
        return
    sys.path.insert(0, str(ROOT))
    from tests.pg import DATABASES, prefect_server

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stopped: still stop the servers it started

    databases = args.db.split(",")
    if unknown := [db for db in databases if db not in DATABASES]:
        parser.error(f"unknown --db {', '.join(unknown)}: use {', '.join(DATABASES)}")
    if not PREFECT.exists():
        sys.exit(f"{PREFECT} not found: install the server extra (pip install -e '.[server]')")

    for database in databases:
        with tempfile.TemporaryDirectory() as tmp:
            # The scheduler would fill the database with runs of the benchmark's schedules meanwhile.
            workers = args.workers if database == "postgres" else 1
            with prefect_server(Path(tmp) / "server", database, workers,
                                PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED="false") as api:
                if args.cloud:
                    rows = cloud_administration(Path(tmp), api, args.cloud)
                    size = f"Cloud administration, {args.cloud} of each object, against the loopback Cloud fake"
                else:
                    rows, kinds = run(Path(tmp), api, args.objects, database)
                    size = f"{args.objects} objects ({kinds})"
        on = {"sqlite": "SQLite", "postgres": f"PostgreSQL ({workers} API worker{'s' if workers > 1 else ''}"
              f"{', Redis messaging' if workers > 1 else ''}, fsync off)"}[database]
        machine = (f"{platform.machine()}, {os.cpu_count()} cores shared with other work ({machine_load()}), "
                   f"Python {platform.python_version()}, prefect 3.8.8 server on {on} on the same machine")
        print_table(rows, size, machine, args.markdown)


def print_table(rows: list[Row], size: str, machine: str, markdown: bool) -> None:
    if markdown:
        print(f"Measured on {machine}; {size}.\n")
        print("| measurement | prefect-provider | baseline | ratio | goal |")
        print("|---|---|---|---|---|")
        for row in rows:
            print("| " + " | ".join(row.cells()) + " |")
        print(flush=True)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"prefect-provider benchmark: {size}\n{machine}")
    for column in ("measurement", "prefect-provider", "baseline", "ratio", "goal"):
        table.add_column(column)
    for row in rows:
        table.add_row(*row.cells())
    Console().print(table)


if __name__ == "__main__":
    main()
