"""No import cycles among tracing_app's modules: data flows one way, edge -> context -> consumers.

Every import counts, including those inside functions (a deferred import hides a cycle from Python but
not from a reader); only ``if TYPE_CHECKING:`` imports are left out.
"""

from __future__ import annotations

import grimp

PACKAGE = "tracing_app"


def strongly_connected(graph: grimp.ImportGraph) -> list[set[str]]:
    """The groups of two or more modules that each reach the others by imports (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in graph.find_modules_directly_imported_by(module):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            group = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.add(member)
                if member == module:
                    break
            if len(group) > 1:
                groups.append(group)

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return groups


def describe(graph: grimp.ImportGraph, group: set[str]) -> str:
    """The modules of ``group`` and every import between them, with the line it is on: any cycle
    through the group is made of these, and removing some of them breaks it."""
    lines = [f"  {len(group)} modules: {', '.join(sorted(group))}"]
    for importer in sorted(group):
        for imported in sorted(graph.find_modules_directly_imported_by(importer) & group):
            details = graph.get_import_details(importer=importer, imported=imported)
            where = ", ".join(str(detail["line_number"]) for detail in details)
            lines.append(f"    {importer} -> {imported} (line {where})")
    return "\n".join(lines)


def test_no_import_cycles() -> None:
    graph = grimp.build_graph(PACKAGE, exclude_type_checking_imports=True, cache_dir=None)
    groups = strongly_connected(graph)
    report = "\n".join(describe(graph, group) for group in sorted(groups, key=min))
    assert not groups, f"import cycles in {PACKAGE}:\n{report}"
