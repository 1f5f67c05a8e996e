"""`k3sc cluster ...`: create (and follow), list, show, scale, retry, events, delete."""

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from k3sc import kubeconfig as kube
from k3sc import watch
from k3sc.client import Client
from k3sc.output import Column, Format, details, emit, field, listing, table
from k3sc.session import Output, Yes, api, confirm, list_command

app = typer.Typer(help="Launch, follow, scale and delete clusters.", no_args_is_help=True)

Name = Annotated[str, typer.Argument(help="Cluster name or id.")]
Wait = Annotated[bool, typer.Option(help="Follow the launch live until it settles.")]
DEFAULT_POOL = "workers"

CLUSTER_COLUMNS: list[Column] = [
    ("NAME", field("name")),
    ("ID", field("id")),
    ("REGION", field("region")),
    ("VERSION", field("k3s_version")),
    ("STATUS", field("status")),
    ("NODES", lambda c: len(c.get("nodes", []))),
    ("CREATED", field("created_at")),
]
NODE_COLUMNS: list[Column] = [
    ("NODE", field("name")),
    ("POOL", field("pool")),
    ("SERVER", field("is_server")),
    ("STATUS", field("status")),
    ("STEP", field("step")),
    ("HOST", field("hypervisor")),
    ("IP", field("ip")),
    ("ERROR", lambda n: n["error"]["code"] if n.get("error") else None),
]
EVENT_COLUMNS: list[Column] = [
    ("ID", field("id")),
    ("AT", field("created_at")),
    ("NODE", field("node")),
    ("STEP", field("step")),
    ("STATE", field("state")),
    ("PROGRESS", field("progress")),
    ("MESSAGE", field("message")),
]
list_command(app, "clusters", CLUSTER_COLUMNS, "List your clusters.")
SUMMARY = ["name", "id", "region", "k3s_version", "cni", "status", "status_reason", "network",
           "firewall", "created_at", "ready_at", "eta_seconds"]  # fmt: skip


def show_cluster(cluster: dict[str, Any]) -> list[Any]:
    pools = ", ".join(f"{p['name']} ({p['size']} x {p['count']})" for p in cluster["pools"])
    summary = details({**cluster, "pools": pools}, [*SUMMARY, "pools"])
    return [summary, table(cluster.get("nodes", []), NODE_COLUMNS, title="Nodes")]


def parse_pool(spec: str) -> dict[str, Any]:
    """name:size:count, as `--pool` takes it."""
    parts = spec.split(":")
    if len(parts) != 3 or not parts[2].isdigit():
        raise typer.BadParameter(f"{spec!r} is not name:size:count", param_hint="--pool")
    return {"name": parts[0], "size": parts[1], "count": int(parts[2])}


def pool_flag(specs: list[str] | None, option: str) -> dict[str, list[str]]:
    """`POOL:what` as --label and --taint take them, by pool."""
    found: dict[str, list[str]] = {}
    for spec in specs or []:
        pool, _, what = spec.partition(":")
        if not what:
            raise typer.BadParameter(f"{spec!r} is not POOL:{option[2:]}", param_hint=option)
        found.setdefault(pool, []).append(what)
    return found


def with_flags(
    pools: list[dict[str, Any]], labels: list[str] | None, taints: list[str] | None
) -> list[dict[str, Any]]:
    """The pools with their --label key=value and --taint key=value:Effect."""
    by_pool = {"labels": pool_flag(labels, "--label"), "taints": pool_flag(taints, "--taint")}
    unknown = {p for flags in by_pool.values() for p in flags} - {p["name"] for p in pools}
    if unknown:
        raise typer.BadParameter(
            f"no pool named {', '.join(sorted(unknown))}", param_hint="--label"
        )
    for pool in pools:
        pairs = (label.partition("=") for label in by_pool["labels"].get(pool["name"], []))
        pool["labels"] = {key: value for key, _, value in pairs}
        pool["taints"] = by_pool["taints"].get(pool["name"], [])
    return pools


def settle(
    client: Client, cluster: dict[str, Any], output: Format, after: int = 0
) -> dict[str, Any]:
    """Follow the cluster to the end; exit 3 with each failed node's error unless running.

    Drawn live on a terminal; otherwise one line per event, on stderr when stdout carries
    JSON or YAML."""
    live = sys.stdout.isatty() and output == Format.TABLE
    stream = sys.stdout if output == Format.TABLE else sys.stderr
    final = watch.follow(client, cluster, live=live, stream=stream, after=after)
    if final["status"] != "running":
        for line in watch.failures(final):
            print(line, file=sys.stderr)
        raise typer.Exit(3)
    return final


def finish(cluster: dict[str, Any], output: Format, waited: bool) -> None:
    if waited and output == Format.TABLE:  # the live table has shown it all
        print(f"Cluster {cluster['name']} is running ({len(cluster['nodes'])} nodes).")
    else:
        emit(cluster, output, show_cluster)


def act(client: Client, cluster: str, output: Format, wait: bool, change: Any) -> None:
    """Run `change(id)` on the cluster, then show it, followed to the end with --wait."""
    cluster_id = client.find_id("clusters", cluster)
    after = watch.last_event_id(client, cluster_id) if wait else 0
    change(cluster_id)
    found = client.get(f"clusters/{cluster_id}")
    finish(settle(client, found, output, after) if wait else found, output, wait)


@app.command()
def create(
    name: Annotated[str, typer.Argument(help="The cluster's name (a DNS label).")],
    region: Annotated[str, typer.Option(help="Region slug (k3sc region list).")],
    size: Annotated[
        str | None, typer.Option(help=f"Node size of the {DEFAULT_POOL!r} pool.")
    ] = None,
    nodes: Annotated[int, typer.Option(help=f"Nodes in the {DEFAULT_POOL!r} pool.")] = 3,
    pool: Annotated[
        list[str] | None, typer.Option(help="Another pool, name:size:count (repeatable).")
    ] = None,
    version: Annotated[
        str | None, typer.Option(help="K3s version (default: the portal's).")
    ] = None,
    network: Annotated[str | None, typer.Option(help="Network name or id.")] = None,
    firewall: Annotated[str | None, typer.Option(help="Firewall name or id.")] = None,
    cni: Annotated[str, typer.Option(help="flannel, or cilium.")] = "flannel",
    label: Annotated[
        list[str] | None, typer.Option(help="A node label, POOL:key=value (repeatable).")
    ] = None,
    taint: Annotated[
        list[str] | None,
        typer.Option(help="A node taint, POOL:key=value:NoSchedule (repeatable)."),
    ] = None,
    wait: Wait = False,
    save_kubeconfig: Annotated[
        bool, typer.Option(help="Merge its admin kubeconfig into your kubeconfig file.")
    ] = False,
    switch: Annotated[bool, typer.Option(help="With --save-kubeconfig: make it current.")] = False,
    output: Output = Format.TABLE,
) -> None:
    """Launch a cluster."""
    pools = [parse_pool(spec) for spec in pool or []]
    if size is not None:
        pools.insert(0, {"name": DEFAULT_POOL, "size": size, "count": nodes})
    if not pools:
        raise typer.BadParameter("give --size (and --nodes) or --pool", param_hint="--size")
    client = api()
    pools = with_flags(pools, label, taint)
    body: dict[str, Any] = {"name": name, "region": region, "pools": pools, "cni": cni}
    if version:
        body["k3s_version"] = version
    if network:
        body["network"] = client.find_id("networks", network)
    if firewall:
        body["firewall"] = client.find_id("firewalls", firewall)
    cluster = client.post("clusters", body)
    if wait:
        cluster = settle(client, cluster, output)
    if save_kubeconfig:
        target = kube.default_path()
        context = kube.issue_and_save(
            client, cluster, "admin", None, target, merge_into=True, switch=switch
        )
        print(f"Saved context {context} to {target}", file=sys.stderr)
    finish(cluster, output, wait)


@app.command()
def show(cluster: Name, output: Output = Format.TABLE) -> None:
    """One cluster, its pools and nodes (and the launch's ETA while it runs)."""
    client = api()
    emit(client.get(f"clusters/{client.find_id('clusters', cluster)}"), output, show_cluster)


@app.command()
def scale(
    cluster: Name,
    pool: Annotated[str, typer.Option(help="The pool's name.")],
    nodes: Annotated[int, typer.Option(help="Its new node count.")],
    wait: Wait = False,
    output: Output = Format.TABLE,
) -> None:
    """Grow or shrink a pool (shrinking drains the newest nodes)."""
    client = api()
    act(
        client,
        cluster,
        output,
        wait,
        lambda cluster_id: client.patch(f"clusters/{cluster_id}/pools/{pool}", {"count": nodes}),
    )


@app.command()
def retry(cluster: Name, wait: Wait = False, output: Output = Format.TABLE) -> None:
    """Launch a cluster's failed nodes again."""
    client = api()

    def retry_failed(cluster_id: str) -> None:
        retried = client.post(f"clusters/{cluster_id}/retry")
        print(f"Retrying {', '.join(retried['retrying'])}", file=sys.stderr)

    act(client, cluster, output, wait, retry_failed)


@app.command()
def upgrade(
    cluster: Name,
    version: Annotated[str, typer.Option(help="The newer K3s version (the next minor at most).")],
    wait: Wait = False,
    output: Output = Format.TABLE,
) -> None:
    """Roll a cluster to a newer K3s: the server in place, then each agent replaced."""
    client = api()
    act(
        client,
        cluster,
        output,
        wait,
        lambda cluster_id: client.post(f"clusters/{cluster_id}/upgrade", {"k3s_version": version}),
    )


@app.command()
def heal(
    cluster: Name,
    enabled: Annotated[
        bool | None, typer.Option("--on/--off", help="Replace unhealthy nodes automatically.")
    ] = None,
    after: Annotated[
        int | None, typer.Option(help="Seconds a node stays unhealthy before it is replaced.")
    ] = None,
    max_parallel: Annotated[int | None, typer.Option(help="Replacements at once.")] = None,
    output: Output = Format.TABLE,
) -> None:
    """Show or change the cluster's health policy (self-healing)."""
    client = api()
    found = client.find_id("clusters", cluster)
    changes = {"enabled": enabled, "after_seconds": after, "max_parallel": max_parallel}
    policy = {key: value for key, value in changes.items() if value is not None}
    shown = client.patch(f"clusters/{found}", {"health_policy": policy})
    emit(shown["health_policy"], output, lambda p: details(p, list(p)))


@app.command()
def events(
    cluster: Name,
    after: Annotated[int, typer.Option(help="Only events after this id.")] = 0,
    output: Output = Format.TABLE,
) -> None:
    """A cluster's event log, oldest first."""
    client = api()
    found = client.find_id("clusters", cluster)
    listing(client.all(f"clusters/{found}/events", after=after), output, EVENT_COLUMNS)


@app.command()
def delete(
    cluster: Name,
    yes: Yes = False,
    delete_kubeconfig_context: Annotated[
        bool, typer.Option(help="Also remove its context, cluster and user from your kubeconfig.")
    ] = False,
    path: Annotated[Path | None, typer.Option(help="That kubeconfig file.")] = None,
) -> None:
    """Delete a cluster and everything it holds."""
    client = api()
    found = client.find("clusters", cluster)
    confirm(f"Delete cluster {found['name']} and all its nodes?", yes)
    client.delete(f"clusters/{found['id']}")
    print(f"Deleting cluster {found['name']} ({found['id']}).")
    if delete_kubeconfig_context:
        target = path or kube.default_path()
        kept, removed = kube.remove(kube.read(target), found["name"])
        if removed:
            kube.write(target, kept)
        print(f"Removed {', '.join(removed) or 'no context'} from {target}")
