"""A package's import graph read with the standard library's ast, and its cycles (the layer tests' helpers).

Every import counts, at module level or inside a function (a function-local import only postpones a cycle to the
first call); imports under ``if TYPE_CHECKING:`` do not, as they never run.
"""
from __future__ import annotations

import ast
from pathlib import Path


def modules(package: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every .py file of ``package`` (a package's own name for __init__.py)."""
    found = {}
    for path in sorted(package.rglob('*.py')):
        parts = path.relative_to(package.parent).with_suffix('').parts
        found['.'.join(parts[:-1] if parts[-1] == '__init__' else parts)] = path
    return found


def imported_names(name: str, path: Path) -> list[str]:
    """Every module name ``path`` (module ``name``) imports, absolute (relative imports resolved), outside
    TYPE_CHECKING blocks; ``from a import b`` gives both ``a`` and ``a.b`` (b may be a module)."""
    names = []

    def visit(nodes) -> None:
        for node in nodes:
            if isinstance(node, ast.If) and 'TYPE_CHECKING' in ast.unparse(node.test):
                visit(node.orelse)
                continue
            if isinstance(node, ast.Import):
                names.extend(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ''
                if node.level:
                    package = name.split('.') if path.name == '__init__.py' else name.split('.')[:-1]
                    base = '.'.join(package[:len(package) - node.level + 1] + ([base] if base else []))
                names.append(base)
                names.extend(f'{base}.{alias.name}' for alias in node.names)
            visit(ast.iter_child_nodes(node))

    visit([ast.parse(path.read_text(), filename=str(path))])
    return names


def graph(package: Path) -> dict[str, set[str]]:
    """Module -> the modules of the same package it imports."""
    files = modules(package)
    edges = {}
    for name, path in files.items():
        targets = set()
        for imported in imported_names(name, path):
            while imported and imported not in files:  # a name inside a module: the module
                imported = imported.rpartition('.')[0]
            if imported and imported != name:
                targets.add(imported)
        edges[name] = targets
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []

    def connect(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for target in edges[module]:
            if target not in index:
                connect(target)
                low[module] = min(low[module], low[target])
            elif target in on_stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = []
            while not component or component[-1] != module:
                component.append(stack.pop())
                on_stack.discard(component[-1])
            if len(component) > 1:
                found.append(sorted(component))

    for module in edges:
        if module not in index:
            connect(module)
    return found
