"""Architecture check (run by `make lint`): no import cycle, apps in layers, short modules.

1. No cycle among the project's modules (imports under `if TYPE_CHECKING:` excluded: they
   never run). Each cycle is printed as its import path with file and line.
2. Layers, top to bottom: cloud > provisioning > networking > observability > portal. A
   module may import its own app or a lower one, never a higher one.
3. No module over MAX_LINES lines (migrations excluded).
4. The command-line client (`k3sc`) stands alone: a pure HTTP client that imports no app
   and no server framework, so it can be installed on its own.
"""

import itertools
import sys
from collections.abc import Iterable
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ["cloud", "provisioning", "networking", "observability", "portal"]
CLIENT = "k3sc"
SERVER_ONLY = {*LAYERS, "django", "rest_framework", "channels", "celery"}
MAX_LINES = 400


def _app(module: str) -> str:
    return module.split(".", 1)[0]


def _where(graph: grimp.ImportGraph, importer: str, imported: str) -> str:
    details = graph.get_import_details(importer=importer, imported=imported)
    lines = ", ".join(str(d["line_number"]) for d in details) or "?"
    return f"{importer} -> {imported} (line {lines})"


def _cycles(graph: grimp.ImportGraph, modules: set[str]) -> list[list[str]]:
    """One shortest cycle per strongly connected group of modules (Tarjan, iterative)."""
    edges = {m: sorted(graph.find_modules_directly_imported_by(m) & modules) for m in modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []
    for start in sorted(modules):
        if start in index:
            continue
        work = [(start, 0)]
        while work:
            node, child = work.pop()
            if child == 0:
                index[node] = low[node] = len(index)
                stack.append(node)
                on_stack.add(node)
            if child < len(edges[node]):
                work.append((node, child + 1))
                nxt = edges[node][child]
                if nxt not in index:
                    work.append((nxt, 0))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            if low[node] == index[node]:
                group = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.add(member)
                    if member == node:
                        break
                if len(group) > 1:
                    groups.append(group)
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return [_shortest_cycle(edges, group) for group in groups]


def _shortest_cycle(edges: dict[str, list[str]], group: set[str]) -> list[str]:
    best: list[str] = []
    for start in sorted(group):
        paths = {start: [start]}
        frontier = [start]
        found: list[str] = []
        while frontier and not found:
            following = []
            for node in frontier:
                for nxt in edges[node]:
                    if nxt == start:
                        found = [*paths[node], start]
                        break
                    if nxt in group and nxt not in paths:
                        paths[nxt] = [*paths[node], nxt]
                        following.append(nxt)
                if found:
                    break
            frontier = following
        if found and (not best or len(found) < len(best)):
            best = found
    return best


def _layer_violations(graph: grimp.ImportGraph, modules: set[str]) -> list[str]:
    rank = {app: n for n, app in enumerate(LAYERS)}
    found = []
    for importer in sorted(modules):
        for imported in sorted(graph.find_modules_directly_imported_by(importer) & modules):
            if rank[_app(imported)] < rank[_app(importer)]:
                found.append(_where(graph, importer, imported))
    return found


def _client_imports() -> list[str]:
    """What the client imports of the server side (it must import none of it)."""
    graph = grimp.build_graph(CLIENT, cache_dir=None, include_external_packages=True)
    found = []
    for importer in sorted(m for m in graph.modules if _app(m) == CLIENT):
        for imported in sorted(graph.find_modules_directly_imported_by(importer)):
            if _app(imported) in SERVER_ONLY:
                found.append(_where(graph, importer, imported))
    return found


def _long_modules(packages: Iterable[str]) -> list[str]:
    found = []
    for package in packages:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            count = len(path.read_text().splitlines())
            if count > MAX_LINES:
                found.append(f"{path.relative_to(ROOT)}: {count} lines")
    return found


def main() -> int:
    sys.path.insert(0, str(ROOT))
    graph = grimp.build_graph(*LAYERS, CLIENT, cache_dir=None, exclude_type_checking_imports=True)
    modules = {m for m in graph.modules if _app(m) in [*LAYERS, CLIENT]}
    problems = 0
    for cycle in _cycles(graph, modules):
        problems += 1
        print("import cycle:")
        for importer, imported in itertools.pairwise(cycle):
            print(f"    {_where(graph, importer, imported)}")
    layered = grimp.build_graph(*LAYERS, cache_dir=None)
    apps = {m for m in modules if _app(m) in LAYERS}
    for violation in _layer_violations(layered, apps):
        problems += 1
        print(f"layers ({' > '.join(LAYERS)}): a lower app imports a higher one: {violation}")
    for violation in _client_imports():
        problems += 1
        print(f"{CLIENT} is a pure HTTP client, yet imports the server side: {violation}")
    for long in _long_modules([*LAYERS, CLIENT]):
        problems += 1
        print(f"module over {MAX_LINES} lines: {long}")
    print(f"architecture: {problems} problem(s)" if problems else "architecture: clean")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
