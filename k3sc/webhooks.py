"""`k3sc webhook ...`: the URLs the portal POSTs your clusters' events to, and what it sent."""

import sys
from typing import Annotated, Any

import typer

from k3sc.output import Column, Format, details, emit, field, listing, table
from k3sc.session import Output, Yes, api, confirm, list_command

app = typer.Typer(help="Webhooks: signed POSTs on cluster and node events.", no_args_is_help=True)

Webhook = Annotated[str, typer.Argument(help="The webhook's id or URL.")]
EVENTS = ["cluster.running", "cluster.failed", "cluster.deleted", "node.failed", "node.unhealthy"]

WEBHOOK_COLUMNS: list[Column] = [
    ("ID", field("id")),
    ("URL", field("url")),
    ("EVENTS", lambda w: ", ".join(w["events"])),
    ("ACTIVE", field("active")),
    ("DESCRIPTION", field("description")),
]
DELIVERY_COLUMNS: list[Column] = [
    ("ID", field("id")),
    ("TYPE", field("type")),
    ("STATUS", field("status")),
    ("ATTEMPTS", field("attempt_count")),
    ("LAST CODE", field("last_status_code")),
    ("NEXT ATTEMPT", field("next_attempt_at")),
    ("REASON", field("reason")),
]
list_command(app, "webhooks", WEBHOOK_COLUMNS, "List your organisation's webhooks.")


def show_webhook(webhook: dict[str, Any]) -> Any:
    return details(
        {**webhook, "events": ", ".join(webhook["events"])},
        ["id", "url", "events", "active", "description", "created_at"],
    )


def webhook_id(name: str) -> str:
    return str(api().find("webhooks", name, key="url")["id"])


@app.command()
def create(
    url: Annotated[str, typer.Argument(help="Where to POST: a public http(s) URL.")],
    event: Annotated[
        list[str] | None, typer.Option(help=f"An event to send (repeatable; default all): {EVENTS}")
    ] = None,
    description: Annotated[str, typer.Option(help="What it is for.")] = "",
    output: Output = Format.TABLE,
) -> None:
    """Register a webhook; its signing secret is printed once, now."""
    body = {"url": url, "events": event or EVENTS, "description": description}
    created = api().post("webhooks", body)
    emit(created, output, show_webhook)
    if output == Format.TABLE:
        print(f"Signing secret (shown only now): {created['secret']}", file=sys.stderr)


@app.command()
def show(webhook: Webhook, output: Output = Format.TABLE) -> None:
    """One webhook."""
    emit(api().get(f"webhooks/{webhook_id(webhook)}"), output, show_webhook)


@app.command()
def update(
    webhook: Webhook,
    active: Annotated[bool | None, typer.Option(help="Send (or stop sending) events.")] = None,
    event: Annotated[list[str] | None, typer.Option(help="The events (replaces them).")] = None,
    output: Output = Format.TABLE,
) -> None:
    """Pause, resume or change the events of a webhook."""
    body: dict[str, Any] = {}
    if active is not None:
        body["active"] = active
    if event:
        body["events"] = event
    emit(api().patch(f"webhooks/{webhook_id(webhook)}", body), output, show_webhook)


@app.command()
def deliveries(webhook: Webhook, output: Output = Format.TABLE) -> None:
    """What was sent to a webhook, newest first, with each delivery's attempts."""
    listing(api().all(f"webhooks/{webhook_id(webhook)}/deliveries"), output, DELIVERY_COLUMNS)


@app.command()
def ping(webhook: Webhook, output: Output = Format.TABLE) -> None:
    """Send a `ping` event now."""
    sent = api().post(f"webhooks/{webhook_id(webhook)}/ping")
    emit(sent, output, lambda d: table([d], DELIVERY_COLUMNS))


@app.command()
def delete(webhook: Webhook, yes: Yes = False) -> None:
    """Stop sending to a webhook and forget it."""
    found = webhook_id(webhook)
    confirm(f"Delete webhook {found}?", yes)
    api().delete(f"webhooks/{found}")
    print(f"Deleted webhook {found}.")
