"""README numbers come from bench/results/*.json (issue 7: every number has a script and a file behind it)."""
import importlib.util
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / 'bench'))  # readme_tables imports its sibling seed_statistics, as run_all does
# bench/ holds scripts, not a package: load the module from its file
_spec = importlib.util.spec_from_file_location('readme_tables', ROOT / 'bench' / 'readme_tables.py')
readme_tables = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(readme_tables)
RENDERERS, update_readme = readme_tables.RENDERERS, readme_tables.update_readme


def test_readme_tables_match_the_committed_results(tmp_path):
    """Re-rendering the tables from the JSON files must leave README.md unchanged (no hand-edited numbers)."""
    copy = tmp_path / 'README.md'
    shutil.copy(ROOT / 'README.md', copy)
    updated = update_readme(copy, ROOT / 'bench' / 'results')
    assert copy.read_text() == (ROOT / 'README.md').read_text(), 'run `python bench/run_all.py --tables-only`'
    present = {name for name, (filename, _) in RENDERERS.items() if (ROOT / 'bench' / 'results' / filename).is_file()}
    assert set(updated) == present


def test_update_replaces_only_the_marked_block(tmp_path):
    """Text outside the markers is kept; a table whose JSON is missing keeps its old text."""
    results = tmp_path / 'results'
    results.mkdir()
    shutil.copy(ROOT / 'bench' / 'results' / 'synthetic.json', results / 'synthetic.json')
    readme = tmp_path / 'README.md'
    readme.write_text('intro\n<!-- bench:synthetic -->\nold\n<!-- /bench:synthetic -->\n'
                      '<!-- bench:models -->\nkeep me\n<!-- /bench:models -->\noutro\n')
    assert update_readme(readme, results) == ['synthetic']
    text = readme.read_text()
    assert text.startswith('intro\n') and text.endswith('outro\n')
    assert 'old' not in text and 'keep me' in text and '| outdoor | 96x320 |' in text
