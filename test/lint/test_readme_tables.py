"""README numbers come from bench/results/*.json (issue 7: every number has a script and a file behind it)."""
import shutil
from pathlib import Path

from bench.readme_tables import RENDERERS, update_readme

ROOT = Path(__file__).resolve().parents[2]


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
