"""What read verbs print: a rich table (default), JSON or YAML of the API's own objects."""

import enum
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

import yaml
from rich.console import Console
from rich.table import Table


class Format(enum.StrEnum):
    TABLE = "table"
    JSON = "json"
    YAML = "yaml"


# Piped output is not cut at 80 columns.
console = Console(width=None if sys.stdout.isatty() else 200)
Column = tuple[str, Callable[[dict[str, Any]], Any]]


def field(name: str) -> Callable[[dict[str, Any]], Any]:
    return lambda row: row.get(name)


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | dict):
        return json.dumps(value)
    return str(value)


def table(rows: Sequence[dict[str, Any]], columns: Sequence[Column], title: str = "") -> Table:
    grid = Table(title=title or None, title_justify="left")
    for header, _ in columns:
        grid.add_column(header)
    for row in rows:
        grid.add_row(*(cell(get(row)) for _, get in columns))
    return grid


def details(item: dict[str, Any], keys: Sequence[str]) -> Table:
    """One object as a two-column table of the given keys."""
    grid = Table(show_header=False, box=None)
    grid.add_column(style="bold")
    grid.add_column()
    for key in keys:
        grid.add_row(key, cell(item.get(key)))
    return grid


def emit(data: Any, fmt: Format, render: Callable[[Any], Any]) -> None:
    """`data` as JSON or YAML as the API gave it, or as `render` draws it for a table."""
    if fmt == Format.JSON:
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
    elif fmt == Format.YAML:
        sys.stdout.write(yaml.safe_dump(data, sort_keys=False))
    else:
        rendered = render(data)
        for part in rendered if isinstance(rendered, list) else [rendered]:
            console.print(part)


def listing(rows: list[dict[str, Any]], fmt: Format, columns: Sequence[Column]) -> None:
    emit(rows, fmt, lambda data: table(data, columns))
