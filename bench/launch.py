"""Launch throughput: 10 clusters x 3 nodes created at once, instant guests, to `running`.

Runs the real processes on throwaway data: uvicorn and a Celery worker (threads pool, with
beat) as `manage.py serve` starts them, clusters POSTed concurrently over HTTP, then
GET /api/v1/clusters polled until every cluster is running. Prints nodes per second, the
time to running per cluster, the CPU each process used, and where a node's time goes
(from the events). Goals on 2 cores: >= 20 nodes/s on PostgreSQL + Redis, >= 5 embedded.

Run: .venv/bin/python bench/launch.py --mode embedded   (SQLite, filesystem broker)
     .venv/bin/python bench/launch.py --mode services   (PostgreSQL + Redis, local)
Add --profile DIR to sample both processes with py-spy (pip install py-spy; not a project
dependency) and print their hottest functions.
"""

import argparse
import os
import signal
import sys
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from statistics import mean
from typing import Any

import _portal as portal
from _django import percentile

STEPS = ("import_image", "start_vm", "cloud_init", "fetch_deps", "launch_k3s")
POLL_SECONDS = 0.2
NAMES = ("web", "worker")
APPS = {"cloud", "portal", "provisioning", "networking", "observability"}


def launch(port: int, token: str, clusters: int, nodes: int, timeout: float) -> dict[str, Any]:
    """Create the clusters at once and wait until all run; their rows and the start time."""

    def create(i: int) -> dict[str, Any]:
        body = {
            "name": f"bench-{i}",
            "region": "demo",
            "pools": [{"name": "pool", "size": "small", "count": nodes}],
        }
        return portal.api(port, token, "POST", "/api/v1/clusters", body)

    start = time.time()
    with ThreadPoolExecutor(clusters) as pool:
        created = list(pool.map(create, range(clusters)))
    accepted = time.time() - start
    wanted = {c["id"] for c in created}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        listed = portal.api(port, token, "GET", "/api/v1/clusters")["results"]
        rows = {c["id"]: c for c in listed}
        broken = [c for c in rows.values() if c["status"] in ("failed", "degraded")]
        if broken:
            errors = [
                f"{n['name']}: {n['error']}" for c in broken for n in c["nodes"] if n["error"]
            ]
            raise SystemExit(f"a launch failed: {broken[0]['status_reason']} {errors}")
        if all(rows[i]["status"] == "running" for i in wanted):
            return {"start": start, "accepted": accepted, "clusters": list(rows.values())}
        time.sleep(POLL_SECONDS)
    states = Counter(
        f"{c['status']}/{n['status']}:{n['step']}" for c in rows.values() for n in c["nodes"]
    )
    raise SystemExit(f"not all clusters running after {timeout} s: {dict(states)}")


def when(stamp: str) -> float:
    return datetime.fromisoformat(stamp).timestamp()


def events_of(port: int, token: str, cluster_id: str) -> list[dict[str, Any]]:
    page = portal.api(port, token, "GET", f"/api/v1/clusters/{cluster_id}/events?limit=1000")
    return page["results"]


def breakdown(port: int, token: str, clusters: list[dict[str, Any]]) -> dict[str, list[float]]:
    """Seconds per phase of each node: the steps, and the hops between them."""
    phases: dict[str, list[float]] = defaultdict(list)
    for cluster in clusters:
        marks: dict[tuple[str, str, str], float] = {}
        for event in events_of(port, token, cluster["id"]):
            if event["node"] and event["step"]:
                marks[(event["node"], event["step"], event["state"])] = when(event["created_at"])
        servers = {n["name"] for n in cluster["nodes"] if n["is_server"]}
        created, ready = when(cluster["created_at"]), when(cluster["ready_at"])
        last = created
        for node in {n for n, _, _ in marks}:
            role = "server" if node in servers else "agent"
            previous = created
            for step in STEPS:
                started, done = marks[(node, step, "started")], marks[(node, step, "done")]
                hop = "create" if step == STEPS[0] else "previous done"
                label = f"{hop} -> {step} started"
                if step == "launch_k3s":
                    label += f" ({role})"
                phases[label].append(started - previous)
                phases[f"  {step}"].append(done - started)
                previous = done
            last = max(last, previous)
        phases["last launch_k3s done -> cluster running"].append(ready - last)
    return phases


def sampler(out: Path) -> list[str]:
    """py-spy in front of a command: samples it and all its threads until SIGINT."""
    spy = str(Path(sys.executable).parent / "py-spy")
    return [
        spy,
        "record",
        "--format",
        "raw",
        "--nolineno",
        "--rate",
        "50",
        "--output",
        str(out),
        "--",
    ]


def hottest(raw: Path, top: int = 10) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
    """Shares of the busy samples (start-up imports left out) inside each project function
    and each top-level package, inclusive. py-spy names files relative to sys.path."""
    functions: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if "_find_and_load" in stack:
            continue
        samples = int(count)
        total += samples
        seen: set[str] = set()
        for frame in stack.split(";"):
            name, _, where = frame.partition(" (")
            package = where.rstrip(")").split("/")[0].removesuffix(".py")
            labels = {package}
            if package in APPS:
                labels.add(f"{where.rstrip(')')}:{name}")
            for label in labels - seen:
                seen.add(label)
                (packages if label == package else functions)[label] += samples

    def shares(counter: Counter[str]) -> list[tuple[str, float]]:
        return [(label, 100 * n / max(1, total)) for label, n in counter.most_common(top)]

    return shares(functions), shares(packages)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=portal.MODES, required=True)
    parser.add_argument("--clusters", type=int, default=10)
    parser.add_argument("--nodes", type=int, default=3, help="nodes per cluster")
    parser.add_argument("--concurrency", type=int, default=8, help="worker threads")
    parser.add_argument("--web-workers", type=int, default=1, help="uvicorn processes")
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument("--profile", type=Path, help="directory for py-spy samples")
    args = parser.parse_args()
    port = portal.free_port()
    room = {  # quota for the whole run, in one organisation
        "QUOTA_CLUSTERS": str(args.clusters),
        "QUOTA_NODES": str(args.clusters * args.nodes),
        "QUOTA_VCPUS": str(args.clusters * args.nodes),
        "QUOTA_MEMORY_MIB": str(args.clusters * args.nodes * 2048),
    }
    with portal.portal_environment(args.mode, port, CLOUD_GUEST_SIM_SCALE="0", **room):
        token = portal.prepare()
        wrapped = args.profile is not None
        if args.profile:
            args.profile.mkdir(parents=True, exist_ok=True)
        spy = {n: sampler(args.profile / f"{n}.txt") if args.profile else [] for n in NAMES}
        children = {
            "web": portal.web(port, *spy["web"], workers=args.web_workers),
            "worker": portal.worker(args.concurrency, *spy["worker"]),
        }
        pids = {name: portal.python_pid(c, wrapped) for name, c in children.items()}
        try:
            portal.wait_until(lambda: portal.serving(port), "the web server")
            portal.wait_until(lambda: portal.log_has("worker", " ready."), "the worker")
            cpu = {name: portal.cpu_seconds(pid) for name, pid in pids.items()}
            machine = portal.machine_cpu()
            tasks = portal.log_count("worker", "] received")
            run = launch(port, token, args.clusters, args.nodes, args.timeout)
            busy, ticks = (b - a for a, b in zip(machine, portal.machine_cpu(), strict=True))
            cpu = {name: portal.cpu_seconds(pid) - cpu[name] for name, pid in pids.items()}
            cpu["whole machine"] = busy
            tasks = portal.log_count("worker", "] received") - tasks
            not_ready = portal.log_count("web", "Conflict: /api/v1/guest/phone-home")
            phases = breakdown(port, token, run["clusters"])
        except SystemExit:
            print(portal.log_tail("worker"), portal.log_tail("web"), sep="\n")
            raise
        finally:
            if wrapped:  # py-spy writes its samples when interrupted
                for child in children.values():
                    child.send_signal(signal.SIGINT)
                    child.wait(timeout=60)
            portal.stop(*children.values())

    clusters = run["clusters"]
    ready = [when(c["ready_at"]) for c in clusters]
    total = max(ready) - run["start"]
    per_cluster = [when(c["ready_at"]) - when(c["created_at"]) for c in clusters]
    count = args.clusters * args.nodes
    goal = 20 if args.mode == "services" else 5
    print(
        f"mode: {args.mode}; {args.clusters} clusters x {args.nodes} nodes, instant guests, "
        f"{args.concurrency} worker threads"
    )
    print(f"all {args.clusters} POSTs answered (202) in {run['accepted']:.2f} s")
    print(f"total: {total:.2f} s from the first POST to the last cluster running")
    print(f"nodes/s: {count / total:.1f} (goal >= {goal})")
    print(
        f"time to running per cluster: p50 {percentile(per_cluster, 0.5):.2f} s, "
        f"p95 {percentile(per_cluster, 0.95):.2f} s"
    )
    cores = os.cpu_count() or 1
    print(
        "CPU seconds used: "
        + ", ".join(f"{n} {s:.1f}" for n, s in cpu.items())
        + f" ({cores} cores busy {100 * busy / ticks:.0f} % over the run; other load counts)"
    )
    print(
        f"worker tasks: {tasks} ({tasks / count:.1f} per node); guest reports refused with "
        f"409 while a server was not Ready: {not_ready}"
    )
    print("where a node's time goes (s): mean, p95")
    for label, values in phases.items():
        print(f"  {label:<48} {mean(values):6.2f} {percentile(values, 0.95):6.2f}")
    if args.profile:
        for name in children:
            raw = args.profile / f"{name}.txt"
            if not raw.exists():
                print(f"no py-spy samples for {name} (is py-spy installed and allowed?)")
                continue
            functions, packages = hottest(raw)
            print(f"{name}: share of its busy samples inside (inclusive), by project function")
            for label, share in functions:
                print(f"  {share:5.1f} %  {label}")
            print(
                "  by package: " + ", ".join(f"{label} {share:.0f} %" for label, share in packages)
            )


if __name__ == "__main__":
    main()
