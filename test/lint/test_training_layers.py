"""The training library's import structure (docs/design.md section 1), read with ast by import_graph.py:
function-local imports count (they hid a seven-file cycle before), TYPE_CHECKING blocks do not."""
from __future__ import annotations

from pathlib import Path

from import_graph import cycles, graph

ROOT = Path(__file__).resolve().parents[2]
LIBRARY = ROOT / 'training' / 'disdepth'


def test_the_cycle_finder_sees_a_cycle_closed_inside_a_function(tmp_path):
    """The check itself: a cycle held by a function-local import is found, a TYPE_CHECKING one is not."""
    package = tmp_path / 'pkg'
    package.mkdir()
    (package / '__init__.py').write_text('')
    (package / 'a.py').write_text('from pkg.b import f\n')
    (package / 'b.py').write_text('def f():\n    from pkg import a\n    return a\n')
    (package / 'c.py').write_text('from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.d import D\n')
    (package / 'd.py').write_text('from . import c\n')
    assert cycles(graph(package)) == [['pkg.a', 'pkg.b']]


def test_training_library_has_no_import_cycle():
    """checkpoint, teacher, data and config import no builder of each other; ``disdepth.build`` assembles them."""
    assert cycles(graph(LIBRARY)) == []


def test_datasets_import_nothing_of_distillation():
    """The datasets are given their pseudo-label teacher (``build_dataset(..., labeller=)``), not importing it."""
    upward = {name: sorted(t for t in targets if t.startswith(('disdepth.distill', 'disdepth.build')))
              for name, targets in graph(LIBRARY).items() if name.startswith('disdepth.data')}
    assert {name: targets for name, targets in upward.items() if targets} == {}
