"""The training library's import structure, read with the standard library's ast.

Every import counts, including those inside functions: a function-local import only postpones a cycle to the
first call, it does not remove it. Imports under ``if TYPE_CHECKING:`` do not count, because they never run
(an annotation may name the config class that imports the annotated module's vocabulary).
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LIBRARY = ROOT / 'training' / 'disdepth'


def module_name(path: Path, package_dir: Path) -> str:
    """``disdepth/data/__init__.py`` -> ``disdepth.data``; ``disdepth/data/kitti.py`` -> ``disdepth.data.kitti``."""
    parts = path.relative_to(package_dir.parent).with_suffix('').parts
    return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == 'TYPE_CHECKING') or (
        isinstance(test, ast.Attribute) and test.attr == 'TYPE_CHECKING')


def _imports(tree: ast.AST):
    """Every Import/ImportFrom node of ``tree`` at any depth, except under ``if TYPE_CHECKING:``."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node):
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def import_graph(package_dir: Path) -> dict[str, set[str]]:
    """{module: the package's modules it imports}. ``from pkg import name`` points at ``pkg.name`` when that is
    a module, else at ``pkg``; a parent package run implicitly before its submodule is not an edge."""
    modules = {module_name(p, package_dir): p for p in sorted(package_dir.rglob('*.py'))}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == '__init__.py' else name.rpartition('.')[0]
        for node in _imports(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = node.module or ''
                if node.level:  # relative: up level - 1 packages from this one
                    anchor = package.split('.')[:len(package.split('.')) - node.level + 1]
                    base = '.'.join(anchor + ([base] if base else []))
                targets = [f'{base}.{alias.name}' if f'{base}.{alias.name}' in modules else base
                           for alias in node.names]
            graph[name] |= {target for target in targets if target in modules and target != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_cycle_finder_sees_a_cycle_closed_inside_a_function(tmp_path):
    """The check itself: a cycle held by a function-local import is found, a TYPE_CHECKING one is not."""
    package = tmp_path / 'pkg'
    package.mkdir()
    (package / '__init__.py').write_text('')
    (package / 'a.py').write_text('from pkg.b import f\n')
    (package / 'b.py').write_text('def f():\n    from pkg import a\n    return a\n')
    (package / 'c.py').write_text('from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.d import D\n')
    (package / 'd.py').write_text('from . import c\n')
    assert cycles(import_graph(package)) == [['pkg.a', 'pkg.b']]


def test_training_library_has_no_import_cycle():
    """checkpoint, teacher, data and config import no builder of each other; ``disdepth.build`` assembles them."""
    assert cycles(import_graph(LIBRARY)) == []


def test_datasets_import_nothing_of_distillation():
    """The datasets are given their pseudo-label teacher (``build_dataset(..., labeller=)``), not importing it."""
    graph = import_graph(LIBRARY)
    upward = {name: sorted(t for t in targets if t.startswith(('disdepth.distill', 'disdepth.build')))
              for name, targets in graph.items() if name.startswith('disdepth.data')}
    assert {name: targets for name, targets in upward.items() if targets} == {}
