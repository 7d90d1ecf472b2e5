"""Benchmarks against the physical limit: `python tests/benchmarks/bench.py [--objects N]`.

Starts the pinned local Prefect server in a temporary directory, builds a workspace of about N
objects (variables, pools with queues) and measures in one run:

- apply from empty, against a bare loop of the same create calls;
- a no-op plan, against a bare script listing the same kinds through the same filter endpoints
  (the physical limit), and against a Terraform-provider-style refresh (one GET per object);
- requests per no-op plan and writes in a no-op apply.

It prints a table (and `--markdown` prints the README's table). Not a test: nothing here asserts.
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
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from provider.client import Connection, PrefectClient  # noqa: E402
from provider.config import load_configuration  # noqa: E402
from provider.engine import apply_plan, make_plan  # noqa: E402
from provider.server import EmbeddedServer  # noqa: E402
from provider.state import LocalBackend, State, StateWriter  # noqa: E402

POOLS = 20
QUEUES_PER_POOL = 4


def write_config(directory: Path, objects: int) -> dict[str, int]:
    """Pools with queues and variables, about `objects` in all."""
    variables = objects - POOLS * (1 + QUEUES_PER_POOL)
    lines = ["work_pools:"]
    for p in range(POOLS):
        lines += [f"  bench-pool-{p}:", "    type: process", "    base_job_template: {}", "    queues:"]
        lines += [f"      q{q}: {{priority: {q + 2}, concurrency_limit: {q + 1}}}" for q in range(QUEUES_PER_POOL)]
    lines.append("variables:")
    lines += [f"  bench_var_{i}: {{value: {{n: {i}, tier: bench}}, tags: [bench]}}" for i in range(variables)]
    (directory / "main.yaml").write_text("\n".join(lines) + "\n")
    return {"work_pools": POOLS, "work_queues": POOLS * QUEUES_PER_POOL, "variables": variables}


def timed(fn, repeat: int = 1) -> tuple[float, object]:
    """The median wall time of `repeat` runs, and the last result."""
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def bare_listing(api: str) -> int:
    """The physical limit of a refresh: every kind through its filter endpoint, 200 a page."""
    count = 0
    with httpx.Client(base_url=api + "/") as http:
        for path in ("work_pools/filter", "work_queues/filter", "variables/filter"):
            offset = 0
            while True:
                page = http.post(path, json={"limit": 200, "offset": offset}).json()
                count += len(page)
                if len(page) < 200:
                    break
                offset += 200
    return count


def per_object_refresh(api: str, names: dict[str, list[str]]) -> int:
    """How a Terraform-provider-style refresh reads: one GET per object."""
    with httpx.Client(base_url=api + "/") as http:
        for pool in names["work_pools"]:
            http.get(f"work_pools/{pool}").raise_for_status()
        for queue in names["work_queues"]:
            pool, name = queue.split("/")
            http.get(f"work_pools/{pool}/queues/{name}").raise_for_status()
        for variable in names["variables"]:
            http.get(f"variables/name/{variable}").raise_for_status()
    return sum(len(v) for v in names.values())


def bare_creates(api: str, objects: int) -> None:
    """The same create calls as the apply, in a bare sequential loop (names prefixed `raw`).

    Like any client of the SQLite-backed server it must retry the 503s of write contention.
    """
    variables = objects - POOLS * (1 + QUEUES_PER_POOL)
    with httpx.Client(base_url=api + "/") as http:
        def post(path: str, body: dict) -> None:
            while (response := http.post(path, json=body)).status_code == 503:
                time.sleep(0.05)
            response.raise_for_status()

        for p in range(POOLS):
            post("work_pools/", {"name": f"raw-pool-{p}", "type": "process", "base_job_template": {}})
            for q in range(QUEUES_PER_POOL):
                post(f"work_pools/raw-pool-{p}/queues", {"name": f"q{q}", "priority": q + 2, "concurrency_limit": q + 1})
        for i in range(variables):
            post("variables/", {"name": f"raw_var_{i}", "value": {"n": i, "tier": "bench"}, "tags": ["bench"]})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--objects", type=int, default=1000)
    parser.add_argument("--markdown", action="store_true", help="print the README table")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        server = EmbeddedServer(Path(tmp) / "server")
        info = server.start()
        try:
            rows = run(Path(tmp), info.api_url, args.objects)
        finally:
            server.stop()
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, prefect 3.8.8 server on SQLite"
    if args.markdown:
        print(f"Measured on {machine}, {args.objects} objects.\n")
        print("| measurement | prefect-provider | baseline | ratio | goal |")
        print("|---|---|---|---|---|")
        for row in rows:
            print("| " + " | ".join(row) + " |")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"prefect-provider benchmark ({args.objects} objects; {machine})")
    for column in ("measurement", "prefect-provider", "baseline", "ratio", "goal"):
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    Console().print(table)


def run(tmp: Path, api: str, objects: int) -> list[list[str]]:
    config_dir = tmp / "infra"
    config_dir.mkdir()
    counts = write_config(config_dir, objects)
    config = load_configuration(config_dir)
    backend = LocalBackend(config_dir / "prefect-provider.state.json")
    rows: list[list[str]] = []

    # apply from empty vs a bare loop of the same creates
    state = State()
    with PrefectClient(Connection(api)) as client:
        def apply_all():
            plan = make_plan(config, state, client, new_state=True)
            return apply_plan(plan, client, StateWriter(backend, state))
        apply_time, result = timed(apply_all)
        assert result.ok, result.failed
    bare_time, _ = timed(lambda: bare_creates(api, objects))
    rows.append(["apply from empty", f"{apply_time:.2f} s", f"{bare_time:.2f} s (bare create loop)",
                 f"{apply_time / bare_time:.2f}×", "≤ 1.3×"])

    # no-op plan vs the physical limit and a per-object refresh
    names = {kind: [] for kind in counts}
    for address in config.resources:
        names[address.kind].append(address.name)
    with PrefectClient(Connection(api)) as client:
        state = backend.read()
        plan_time, plan = timed(lambda: make_plan(config, state, client), repeat=5)
        reads = client.counter.reads / 5
        assert not plan.pending, "the benchmark's no-op plan has changes"
    limit_time, listed = timed(lambda: bare_listing(api), repeat=5)
    refresh_time, _ = timed(lambda: per_object_refresh(api, names), repeat=3)
    rows.append(["no-op plan (in process)", f"{plan_time * 1000:.0f} ms", f"{limit_time * 1000:.0f} ms (bare filter listing)",
                 f"{plan_time / limit_time:.2f}×", "≤ 1.5×"])
    rows.append(["per-object refresh (Terraform-provider style)", f"{plan_time * 1000:.0f} ms",
                 f"{refresh_time * 1000:.0f} ms ({objects} GETs)", f"{refresh_time / plan_time:.1f}× faster", "—"])
    rows.append(["requests per no-op plan", f"{reads:.0f}", f"{objects} objects, {listed} listed", "—", "kinds + pages"])

    # the CLI end to end: a no-op apply sends no writes
    env = {**os.environ, "PREFECT_API_URL": api, "NO_COLOR": "1"}
    cli_time, proc = timed(lambda: subprocess.run([sys.executable, "-m", "provider", "plan", str(config_dir)],
                                                  env=env, capture_output=True, text=True), repeat=3)
    assert "No changes." in proc.stdout, proc.stdout + proc.stderr
    with PrefectClient(Connection(api)) as client:
        state = backend.read()
        plan = make_plan(config, state, client)
        before = client.counter.writes
        apply_plan(plan, client, StateWriter(backend, state))
        writes = client.counter.writes - before
    rows.append(["no-op plan (CLI, wall time incl. start-up)", f"{cli_time:.2f} s", "—", "—", "—"])
    rows.append(["writes in a no-op apply", str(writes), "—", "—", "0"])
    help_time, _ = timed(lambda: subprocess.run([sys.executable, "-m", "provider", "--help"], capture_output=True), repeat=5)
    rows.append(["CLI start-up (`--help`)", f"{help_time * 1000:.0f} ms", "—", "—", "no `import prefect`"])
    return rows


if __name__ == "__main__":
    main()
