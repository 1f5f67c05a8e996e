"""Launch throughput: 10 clusters x 3 nodes created at once, instant guests, to `running`.

Runs the real processes on throwaway data: uvicorn and a Celery worker (threads pool, with
beat) as `manage.py serve` starts them, warmed by 1-node launches (a process's first
requests import and cache once), clusters POSTed concurrently over HTTP, then
GET /api/v1/clusters polled until every cluster is running. Prints nodes per second, the
time to running per cluster, the CPU each process used, and where a node's time goes
(from the events). Goals on 2 cores: >= 20 nodes/s on PostgreSQL + Redis, >= 5 embedded.

Run: .venv/bin/python bench/launch.py --mode embedded   (SQLite, filesystem broker)
     .venv/bin/python bench/launch.py --mode services   (PostgreSQL + Redis, local)
CPU is counted for every process: web and worker with their children (uvicorn's workers),
and PostgreSQL's and Redis's processes; the guest simulator runs in a worker of its own
(GUEST_SIM_QUEUE), its CPU printed apart from the control plane's. --watchers 10 adds ten
clients polling their cluster's GET five times a second. --profile DIR samples web (all
its processes) and the workers with py-spy (a dev dependency) and prints the top ten
project functions of each.
--rounds N repeats the run and prints each run's figures with their medians.
--observe both runs it twice, logs at WARNING without tracing and then logs at INFO with
every trace exported over OTLP (to a sink in this process), and prints what logging and
tracing cost (goal <= 10 %).
"""

import argparse
import http.server
import os
import signal
import sys
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from functools import partial
from pathlib import Path
from statistics import mean, median
from typing import Any

import _portal as portal
from _django import percentile

from portal.management.commands.serve import default_web_workers

STEPS = ("import_image", "start_vm", "cloud_init", "fetch_deps", "launch_k3s")
POLL_SECONDS = 1.0  # the bench watching for the end; ready_at gives the times
WARM_UPS = 4  # 1-node launches per web process before the measured batch
# The simulated guests' work (their reports' HTTP clients) runs in a worker of its own,
# counted apart: on real hosts it is the VMs' CPU, not the control plane's.
GUESTS = "guests"
GUEST_THREADS = 4
NAMES = ("web", "worker", GUESTS)
APPS = {"cloud", "portal", "provisioning", "networking", "observability"}


class Watchers:
    """`count` clients each polling one cluster's detail GET `per_second` times a second
    (as a customer's page or script watches its launch), from the first POST to the end."""

    def __init__(self, port: int, token: str, count: int, per_second: float = 5.0) -> None:
        self.port, self.token, self.count, self.pause = port, token, count, 1 / per_second
        self.ids: list[str] = []
        self.latencies: list[float] = []
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.poll, args=(i,)) for i in range(count)]

    def poll(self, index: int) -> None:
        while not self.stop.is_set():
            if len(self.ids) > index:
                began = time.perf_counter()
                path = f"/api/v1/clusters/{self.ids[index]}"
                portal.api(self.port, self.token, "GET", path)
                self.latencies.append(time.perf_counter() - began)
            self.stop.wait(self.pause)

    def __enter__(self) -> "Watchers":
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join()


def launch(
    port: int, token: str, clusters: int, nodes: int, timeout: float, watchers: Watchers
) -> dict[str, Any]:
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
    watchers.ids.extend(c["id"] for c in created)
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
            return {"start": start, "accepted": accepted, "clusters": [rows[i] for i in wanted]}
        time.sleep(POLL_SECONDS)
    states = Counter(
        f"{c['status']}/{n['status']}:{n['step']}" for c in rows.values() for n in c["nodes"]
    )
    raise SystemExit(f"not all clusters running after {timeout} s: {dict(states)}")


def warm_up(port: int, token: str, launches: int, timeout: float) -> None:
    """1-node launches before the measured ones, posted at once (several per web process,
    so each likely gets some): a process's first requests and tasks import modules and
    fill caches once, which is no node's cost."""

    def create(i: int) -> str:
        pool = [{"name": "pool", "size": "small", "count": 1}]
        body = {"name": f"warm-up-{i}", "region": "demo", "pools": pool}
        return str(portal.api(port, token, "POST", "/api/v1/clusters", body)["id"])

    with ThreadPoolExecutor(launches) as pool:
        created = list(pool.map(create, range(launches)))
    for cluster_id in created:
        path = f"/api/v1/clusters/{cluster_id}"
        portal.wait_until(partial(is_running, port, token, path), "the warm-up", timeout)


def is_running(port: int, token: str, path: str) -> bool:
    return bool(portal.api(port, token, "GET", path)["status"] == "running")


def when(stamp: str) -> float:
    return datetime.fromisoformat(stamp).timestamp()


def events_of(port: int, token: str, cluster_id: str) -> list[dict[str, Any]]:
    page = portal.api(port, token, "GET", f"/api/v1/clusters/{cluster_id}/events?limit=1000")
    return page["results"]


def detail_get_cpu(
    port: int, token: str, cluster_id: str, pids: dict[str, int], mode: str, count: int = 200
) -> dict[str, float]:
    """Server CPU of one cluster detail GET (ms per process), the launch over: the CPU of
    web (and PostgreSQL) across `count` GETs in a row, less what the same processes used
    as long again idle just before (the beats), divided by the GETs."""
    path = f"/api/v1/clusters/{cluster_id}"
    portal.api(port, token, "GET", path)
    began = time.monotonic()
    for _ in range(count):
        portal.api(port, token, "GET", path)
    took = time.monotonic() - began
    idle = processes_cpu({"web": pids["web"]}, mode)
    time.sleep(took)
    before = processes_cpu({"web": pids["web"]}, mode)
    for _ in range(count):
        portal.api(port, token, "GET", path)
    after = processes_cpu({"web": pids["web"]}, mode)
    return {
        name: 1000 * (after[name] - 2 * before[name] + idle[name]) / count
        for name in ("web", "postgres")
        if name in after
    }


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
        "--subprocesses",  # uvicorn's worker processes too
        "--gil",  # only the thread holding the GIL: Python's CPU, not waits on PostgreSQL
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


class TraceSink:
    """A stand-in OTLP/HTTP collector on a free port: takes every export, counts it."""

    def __init__(self) -> None:
        sink = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                size = int(self.headers.get("Content-Length", 0))
                self.rfile.read(size)
                sink.exports += 1
                sink.bytes += size
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.exports = self.bytes = 0
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def processes_cpu(pids: dict[str, int], mode: str) -> dict[str, float]:
    """CPU seconds so far of web, worker and guests (each with the processes below it) and, with
    services, of PostgreSQL and Redis (all their processes here: run nothing else)."""
    used = {name: portal.tree_cpu(pid) for name, pid in pids.items()}
    if mode == "services":
        used["postgres"] = portal.service_cpu("postgres")
        used["redis"] = portal.service_cpu("redis-server")
    return used


def measure(args: argparse.Namespace, observed: bool) -> dict[str, Any]:
    """One launch of the whole batch on a fresh portal; `observed`: INFO-level JSON logs
    and every trace exported over OTLP, else warnings only and no tracing."""
    port = portal.free_port()
    warm_ups = WARM_UPS * args.web_workers
    nodes = args.clusters * args.nodes + warm_ups
    room = {  # quota for the whole run and its warm-up, in one organisation
        "QUOTA_CLUSTERS": str(args.clusters + warm_ups),
        "QUOTA_NODES": str(nodes),
        "QUOTA_VCPUS": str(nodes),
        "QUOTA_MEMORY_MIB": str(nodes * 2048),
    }
    sink = TraceSink() if observed else None
    observe = {"LOG_LEVEL": "INFO", "OTEL_EXPORTER_OTLP_ENDPOINT": sink.url} if sink else {}
    with portal.portal_environment(
        args.mode, port, CLOUD_GUEST_SIM_SCALE="0", GUEST_SIM_QUEUE=GUESTS, **room, **observe
    ):
        token = portal.prepare()
        wrapped = args.profile is not None
        if args.profile:
            args.profile.mkdir(parents=True, exist_ok=True)
        spy = {n: sampler(args.profile / f"{n}.txt") if args.profile else [] for n in NAMES}
        children = {
            "web": portal.web(port, *spy["web"], workers=args.web_workers),
            "worker": portal.worker(args.concurrency, *spy["worker"]),
            GUESTS: portal.worker(GUEST_THREADS, *spy[GUESTS], queue=GUESTS),
        }
        pids = {name: portal.python_pid(c, wrapped) for name, c in children.items()}
        try:
            portal.wait_until(lambda: portal.serving(port), "the web server")
            for worker in ("worker", GUESTS):
                portal.wait_until(partial(portal.log_has, worker, " ready."), f"the {worker}")
            warm_up(port, token, WARM_UPS * args.web_workers, args.timeout)
            cpu = processes_cpu(pids, args.mode)
            machine = portal.machine_cpu()
            tasks = portal.log_count("worker", "] received")
            with Watchers(port, token, args.watchers) as watchers:
                run = launch(port, token, args.clusters, args.nodes, args.timeout, watchers)
            busy, ticks = (b - a for a, b in zip(machine, portal.machine_cpu(), strict=True))
            cpu = {name: used - cpu[name] for name, used in processes_cpu(pids, args.mode).items()}
            cpu["whole machine"] = busy
            tasks = portal.log_count("worker", "] received") - tasks
            not_ready = portal.log_count("web", "Conflict: /api/v1/guest/phone-home")
            log_bytes = sum(
                (Path(os.environ["DATA_DIR"]) / f"{name}.log").stat().st_size for name in NAMES
            )
            phases = breakdown(port, token, run["clusters"])
            get_ms = detail_get_cpu(port, token, run["clusters"][0]["id"], pids, args.mode)
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
    return {
        "run": run,
        "total": max(when(c["ready_at"]) for c in clusters) - run["start"],
        "per_cluster": [when(c["ready_at"]) - when(c["created_at"]) for c in clusters],
        "cpu": cpu,
        "busy": busy,
        "ticks": ticks,
        "tasks": tasks,
        "not_ready": not_ready,
        "phases": phases,
        "get_ms": get_ms,
        "log_bytes": log_bytes,
        "watched": watchers.latencies,
        "trace_exports": sink.exports if sink else 0,
        "trace_bytes": sink.bytes if sink else 0,
    }


def control_plane(shown: dict[str, Any]) -> list[str]:
    """The processes counted as the control plane: all but the simulated guests."""
    return [n for n in shown["cpu"] if n not in ("whole machine", GUESTS)]


def control_ms(shown: dict[str, Any], count: int) -> float:
    """CPU per node of the control plane."""
    return 1000 * sum(shown["cpu"][n] for n in control_plane(shown)) / count


def summarise(args: argparse.Namespace, runs: list[dict[str, Any]]) -> None:
    """Each run's throughput and control-plane CPU per node, and their medians: one run
    moves by a quarter on this machine."""
    count = args.clusters * args.nodes
    rates = [count / shown["total"] for shown in runs]
    spent = [control_ms(shown, count) for shown in runs]
    gets = [shown["get_ms"]["web"] for shown in runs]
    print(
        f"{len(runs)} runs: nodes/s {', '.join(f'{r:.1f}' for r in rates)} (median "
        f"{median(rates):.1f}); control-plane CPU per node {', '.join(f'{c:.0f}' for c in spent)}"
        f" ms (median {median(spent):.0f}); detail GET web CPU median {median(gets):.1f} ms"
    )


def report(args: argparse.Namespace, shown: dict[str, Any], observed: bool) -> None:
    count = args.clusters * args.nodes
    goal = 20 if args.mode == "services" else 5
    observing = (
        f"logs at INFO ({shown['log_bytes'] / 1024:.0f} KiB), traces over OTLP "
        f"({shown['trace_exports']} exports, {shown['trace_bytes'] / 1024:.0f} KiB)"
        if observed
        else f"logs at WARNING ({shown['log_bytes'] / 1024:.0f} KiB), no tracing"
    )
    print(
        f"mode: {args.mode}; {args.clusters} clusters x {args.nodes} nodes, instant guests, "
        f"{args.concurrency} worker threads; {observing}"
    )
    print(f"all {args.clusters} POSTs answered (202) in {shown['run']['accepted']:.2f} s")
    print(f"total: {shown['total']:.2f} s from the first POST to the last cluster running")
    print(f"nodes/s: {count / shown['total']:.1f} (goal >= {goal})")
    per_cluster = shown["per_cluster"]
    print(
        f"time to running per cluster: p50 {percentile(per_cluster, 0.5):.2f} s, "
        f"p95 {percentile(per_cluster, 0.95):.2f} s"
    )
    cores = os.cpu_count() or 1
    print(
        "CPU seconds used: "
        + ", ".join(f"{n} {s:.1f}" for n, s in shown["cpu"].items())
        + f" ({cores} cores busy {100 * shown['busy'] / shown['ticks']:.0f} % over the run;"
        " other load counts)"
    )
    print(
        f"CPU per node, {' + '.join(control_plane(shown))}: {control_ms(shown, count):.0f} ms "
        f"(goal <= 100 ms); the simulated guests: {1000 * shown['cpu'][GUESTS] / count:.0f} ms "
        f"(the VMs' own on real hosts); the whole machine: {1000 * shown['busy'] / count:.0f} ms"
    )
    if shown["watched"]:
        watched = shown["watched"]
        print(
            f"{args.watchers} watchers polling GET /api/v1/clusters/{{id}} 5/s: "
            f"{len(watched)} GETs, p50 {1000 * percentile(watched, 0.5):.1f} ms, "
            f"p95 {1000 * percentile(watched, 0.95):.1f} ms"
        )
    get_ms = ", ".join(f"{name} {ms:.1f} ms" for name, ms in shown["get_ms"].items())
    print(f"one cluster detail GET, the launch over, CPU: {get_ms} (goal < 5 ms)")
    print(
        f"worker tasks: {shown['tasks']} ({shown['tasks'] / count:.1f} per node); guest reports "
        f"refused with 409 while a server was not Ready: {shown['not_ready']}"
    )
    print("where a node's time goes (s): mean, p95")
    for label, values in shown["phases"].items():
        print(f"  {label:<48} {mean(values):6.2f} {percentile(values, 0.95):6.2f}")
    if args.profile:
        for name in NAMES:
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


def compare(args: argparse.Namespace, runs: dict[bool, list[dict[str, Any]]]) -> None:
    """What logging and tracing cost: the medians of throughput and of machine CPU per node,
    off and on, their runs alternated (goal <= 10 %)."""
    count = args.clusters * args.nodes
    rate = {on: median(count / shown["total"] for shown in runs[on]) for on in runs}
    cpu = {on: median(1000 * shown["busy"] / count for shown in runs[on]) for on in runs}
    for on, label in ((False, "off"), (True, "on")):
        each = ", ".join(f"{count / shown['total']:.1f}" for shown in runs[on])
        print(f"  {label}: nodes/s {each}; median {rate[on]:.1f}, {cpu[on]:.0f} ms CPU per node")
    print(
        f"logging and tracing, medians of {len(runs[True])} runs each: throughput cost "
        f"{100 * (1 - rate[True] / rate[False]):.1f} %, machine CPU per node cost "
        f"{100 * (cpu[True] / cpu[False] - 1):.1f} % (goal <= 10 %)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=portal.MODES, required=True)
    parser.add_argument("--clusters", type=int, default=10)
    parser.add_argument("--nodes", type=int, default=3, help="nodes per cluster")
    parser.add_argument("--concurrency", type=int, default=8, help="worker threads")
    parser.add_argument(
        "--web-workers",
        type=int,
        default=default_web_workers(),
        help="uvicorn processes (default: as manage.py serve starts them)",
    )
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument("--profile", type=Path, help="directory for py-spy samples")
    parser.add_argument(
        "--watchers", type=int, default=0, help="clients polling a cluster's GET 5/s each"
    )
    parser.add_argument(
        "--observe",
        choices=("off", "on", "both"),
        default="off",
        help="logs at INFO and traces over OTLP (to a local sink); both: off, then on",
    )
    parser.add_argument(
        "--rounds", type=int, default=1, help="runs, with medians (with --observe both: pairs)"
    )
    args = parser.parse_args()
    order = {"off": [False], "on": [True], "both": [False, True]}[args.observe] * args.rounds
    runs: dict[bool, list[dict[str, Any]]] = {False: [], True: []}
    for observed in order:
        runs[observed].append(measure(args, observed))
        if len(runs[observed]) == 1:  # the first of each in full; the comparison has the rest
            report(args, runs[observed][0], observed)
    if args.observe == "both":
        compare(args, runs)
    elif args.rounds > 1:
        summarise(args, runs[args.observe == "on"])


if __name__ == "__main__":
    main()
