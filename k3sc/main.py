"""The `k3sc` command: login, the catalogue, kubeconfigs; clusters, networks and firewalls
in their own modules. Exit codes: 0 done, 1 the portal refused (its code on stderr),
2 the portal unreachable (or a usage error), 3 a launch failed."""

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from k3sc import clusters, config, networks, webhooks
from k3sc import kubeconfig as kube
from k3sc.client import ApiError, Client, NetworkError
from k3sc.output import Column, Format, details, emit, field
from k3sc.session import Output, api, list_command

app = typer.Typer(
    name="k3sc",
    help="Drive the K3s cloud portal's clusters, networks and firewalls.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(clusters.app, name="cluster")
app.add_typer(networks.network_app, name="network")
app.add_typer(networks.firewall_app, name="firewall")
app.add_typer(webhooks.app, name="webhook")


@app.command()
def login(
    url: Annotated[str | None, typer.Option(help="The portal, e.g. https://portal.example")] = None,
    token: Annotated[
        str | None, typer.Option(help="An API token (asked for, hidden, when not given).")
    ] = None,
) -> None:
    """Check a token against the portal and keep it for the next commands."""
    url = (url or config.url()).rstrip("/")
    token = token or typer.prompt("API token", hide_input=True)
    me = Client(url, token).get("me")
    saved = config.save(config.Profile(url, token))
    print(f"Logged in to {url} as {me['username']} ({me['organisation']}); saved to {saved}")


@app.command()
def logout() -> None:
    """Forget the stored token."""
    print("Logged out." if config.remove() else "Was not logged in.")


@app.command()
def whoami(output: Output = Format.TABLE) -> None:
    """Who the token acts as, in which organisation."""
    client = api()
    me: dict[str, Any] = {**client.get("me"), "url": client.url}
    emit(me, output, lambda m: details(m, ["username", "organisation", "url", "is_staff"]))


def catalogue(noun: str, path: str, columns: list[Column]) -> None:
    group = typer.Typer(help=f"The {noun}s clusters can be launched with.", no_args_is_help=True)
    list_command(group, path, columns, f"List the {noun}s.")
    app.add_typer(group, name=noun)


catalogue("region", "regions", [("SLUG", field("slug")), ("NAME", field("name"))])
catalogue(
    "size",
    "sizes",
    [
        ("SLUG", field("slug")),
        ("VCPUS", field("vcpus")),
        ("MEMORY MIB", field("memory_mib")),
        ("DISK GIB", field("disk_gib")),
        ("MONTHLY", field("monthly_price")),
    ],
)
catalogue(
    "version",
    "k3s-versions",
    [
        ("VERSION", field("version")),
        ("DEFAULT", field("default")),
        ("REGIONS", lambda v: ", ".join(v["regions"])),
    ],
)


@app.command("kubeconfig")
def kubeconfig_(
    cluster: Annotated[str, typer.Argument(help="Cluster name or id.")],
    role: Annotated[kube.Role, typer.Option(help="admin changes, viewer reads.")] = kube.Role.ADMIN,
    ttl: Annotated[int | None, typer.Option(help="Lifetime in seconds (8 h by default).")] = None,
    save: Annotated[bool, typer.Option(help="Write it into your kubeconfig file.")] = False,
    merge: Annotated[
        bool, typer.Option(help="Keep the file's other entries (--no-merge replaces the file).")
    ] = True,
    switch: Annotated[bool, typer.Option(help="Make it the current context.")] = False,
    path: Annotated[
        Path | None, typer.Option(help="The file (default: first of $KUBECONFIG, ~/.kube/config).")
    ] = None,
) -> None:
    """Print a cluster's kubeconfig, or --save it into your kubeconfig file."""
    client = api()
    found = client.find("clusters", cluster)
    if not (save or path):
        sys.stdout.write(kube.fetch(client, found["id"], role, ttl))
        return
    target = path or kube.default_path()
    context = kube.issue_and_save(client, found, role, ttl, target, merge_into=merge, switch=switch)
    print(f"Saved context {context} to {target}" + (" (current)" if switch else ""))


def run() -> None:
    """The console script: the portal's errors on stderr with their code."""
    try:
        app()
    except ApiError as error:
        for line in error.lines():
            print(line, file=sys.stderr)
        sys.exit(1)
    except config.NotLoggedIn as error:
        print(f"error: not_logged_in: {error}", file=sys.stderr)
        sys.exit(1)
    except NetworkError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
