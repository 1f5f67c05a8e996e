"""What every verb shares: the logged-in client and the output option."""

from collections.abc import Sequence
from typing import Annotated

import typer

from k3sc import config
from k3sc.client import Client
from k3sc.output import Column, Format, listing

Output = Annotated[Format, typer.Option("--output", "-o", help="table (default), json or yaml.")]
Yes = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]


def api() -> Client:
    profile = config.load()
    return Client(profile.url, profile.token)


def confirm(question: str, yes: bool) -> None:
    if not yes and not typer.confirm(question):
        raise typer.Abort()


def list_command(group: typer.Typer, path: str, columns: Sequence[Column], doc: str) -> None:
    """`<group> list`: every item of the API list at `path`, as a table, JSON or YAML."""

    def list_(output: Output = Format.TABLE) -> None:
        listing(api().all(path), output, columns)

    list_.__doc__ = doc
    group.command("list")(list_)
