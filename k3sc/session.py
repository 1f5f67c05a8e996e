"""What every verb shares: the logged-in client and the output option."""

from typing import Annotated

import typer

from k3sc import config
from k3sc.client import Client
from k3sc.output import Format

Output = Annotated[Format, typer.Option("--output", "-o", help="table (default), json or yaml.")]
Yes = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]


def api() -> Client:
    profile = config.load()
    return Client(profile.url, profile.token)


def confirm(question: str, yes: bool) -> None:
    if not yes and not typer.confirm(question):
        raise typer.Abort()
