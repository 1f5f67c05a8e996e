"""`k3sc network ...` and `k3sc firewall ...`: tenant networks and their firewall rules."""

from collections.abc import Callable
from typing import Annotated, Any

import typer

from k3sc.output import Column, Format, details, emit, field, table
from k3sc.session import Output, Yes, api, confirm, list_command

network_app = typer.Typer(help="Your organisation's L2 networks.", no_args_is_help=True)
firewall_app = typer.Typer(help="Firewalls and their rules.", no_args_is_help=True)

Name = Annotated[str, typer.Argument(help="Name or id.")]
RULE_FIELDS = ("direction", "protocol", "ports", "cidr", "label")
RULE_HELP = "direction:protocol:ports:cidr[:label], e.g. ingress:tcp:6443:0.0.0.0/0 (repeatable)"

NETWORK_COLUMNS: list[Column] = [
    ("NAME", field("name")),
    ("ID", field("id")),
    ("CIDR", field("cidr")),
    ("REGION", field("region")),
    ("IPS IN USE", field("ips_in_use")),
    ("DEFAULT", field("is_default")),
    ("EGRESS", field("egress")),
]
FIREWALL_COLUMNS: list[Column] = [
    ("NAME", field("name")),
    ("ID", field("id")),
    ("NETWORK", field("network")),
    ("RULES", lambda f: len(f["rules"])),
    ("REVISION", field("revision")),
    ("DEFAULT", field("is_default")),
]
RULE_COLUMNS: list[Column] = [(name.upper(), field(name)) for name in RULE_FIELDS]
list_command(network_app, "networks", NETWORK_COLUMNS, "List the networks.")
list_command(firewall_app, "firewalls", FIREWALL_COLUMNS, "List the firewalls.")


def parse_rule(spec: str) -> dict[str, str]:
    """direction:protocol:ports:cidr[:label]; ports may be empty (icmp, all)."""
    parts = spec.split(":", 4)
    if len(parts) < 4:
        raise typer.BadParameter(f"{spec!r} is not {RULE_HELP.split(',')[0]}", param_hint="--rule")
    return {name: value for name, value in zip(RULE_FIELDS, parts, strict=False) if value}


def show_firewall(firewall: dict[str, Any]) -> list[Any]:
    summary = details(firewall, ["name", "id", "network", "revision", "is_default", "created_at"])
    return [summary, table(firewall["rules"], RULE_COLUMNS, title="Rules")]


def show_network(network: dict[str, Any]) -> Any:
    keys = ["name", "id", "cidr", "gateway", "segment_id", "region", "ips_in_use", "is_default"]
    return details(network, [*keys, "egress", "created_at"])


def show_and_delete(
    group: typer.Typer, collection: str, render: Callable[[Any], Any], show_doc: str
) -> None:
    """`<group> show` and `<group> delete` of one object of `collection`, by name or id."""
    noun = collection[:-1]

    def show(name_or_id: Name, output: Output = Format.TABLE) -> None:
        client = api()
        emit(client.get(f"{collection}/{client.find_id(collection, name_or_id)}"), output, render)

    def delete(name_or_id: Name, yes: Yes = False) -> None:
        client = api()
        found = client.find(collection, name_or_id)
        confirm(f"Delete {noun} {found['name']}?", yes)
        client.delete(f"{collection}/{found['id']}")
        print(f"Deleted {noun} {found['name']}.")

    show.__doc__, delete.__doc__ = show_doc, f"Delete a {noun} no cluster uses."
    group.command("show")(show)
    group.command("delete")(delete)


@network_app.command("create")
def network_create(
    name: Annotated[str, typer.Argument(help="The network's name.")],
    cidr: Annotated[str, typer.Option(help="Its IPv4 range, e.g. 10.20.0.0/24.")],
    region: Annotated[str | None, typer.Option(help="Region slug (default: the first).")] = None,
    egress: Annotated[bool, typer.Option(help="Outbound internet through the hosts.")] = False,
    output: Output = Format.TABLE,
) -> None:
    """Create a network (and its default firewall)."""
    body: dict[str, Any] = {"name": name, "cidr": cidr, "egress": egress}
    if region:
        body["region"] = region
    emit(api().post("networks", body), output, show_network)


@network_app.command("update")
def network_update(
    network: Name,
    egress: Annotated[bool, typer.Option(help="Outbound internet through the hosts.")],
    output: Output = Format.TABLE,
) -> None:
    """Turn a network's egress on or off."""
    client = api()
    found = client.find_id("networks", network)
    emit(client.patch(f"networks/{found}", {"egress": egress}), output, show_network)


@firewall_app.command("create")
def firewall_create(
    name: Annotated[str, typer.Argument(help="The firewall's name.")],
    network: Annotated[str, typer.Option(help="Its network, by name or id.")],
    rule: Annotated[list[str] | None, typer.Option(help=RULE_HELP)] = None,
    output: Output = Format.TABLE,
) -> None:
    """Create a firewall; without --rule it gets the portal's default rules."""
    client = api()
    body: dict[str, Any] = {"name": name, "network": client.find_id("networks", network)}
    if rule:
        body["rules"] = [parse_rule(spec) for spec in rule]
    emit(client.post("firewalls", body), output, show_firewall)


@firewall_app.command("update")
def firewall_update(
    firewall: Name,
    name: Annotated[str | None, typer.Option(help="A new name.")] = None,
    rule: Annotated[list[str] | None, typer.Option(help=f"Replace the rules: {RULE_HELP}")] = None,
    add_rule: Annotated[
        list[str] | None, typer.Option(help="Add a rule to the current ones.")
    ] = None,
    remove_rule: Annotated[
        list[int] | None, typer.Option(help="Remove the rule at this index (0-based).")
    ] = None,
    output: Output = Format.TABLE,
) -> None:
    """Rename a firewall or change its rules (rolled out to every host that runs it)."""
    client = api()
    found = client.find("firewalls", firewall)
    body: dict[str, Any] = {}
    if name:
        body["name"] = name
    if rule is not None or add_rule or remove_rule:
        rules = [parse_rule(spec) for spec in rule] if rule else list(found["rules"])
        drop = set(remove_rule or [])
        rules = [r for index, r in enumerate(rules) if index not in drop]
        body["rules"] = rules + [parse_rule(spec) for spec in add_rule or []]
    emit(client.patch(f"firewalls/{found['id']}", body), output, show_firewall)


show_and_delete(network_app, "networks", show_network, "One network.")
show_and_delete(firewall_app, "firewalls", show_firewall, "One firewall, its rules and rollout.")
