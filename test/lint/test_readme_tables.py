"""The docs' numbers come from bench/results/*.json: every number has a script and a file behind it. The node's
parameter table is depth_kd_ros/params.py's, so the reference cannot fall behind the node."""
import shutil
from pathlib import Path

from bench.readme_tables import DOCUMENTS, RENDERERS, parameters_table, update_tables
from depth_kd_ros.params import SPECS

ROOT = Path(__file__).resolve().parents[2]


def test_readme_tables_match_the_committed_results(tmp_path):
    """Re-rendering the tables from the JSON files must leave the docs unchanged (no hand-edited numbers)."""
    updated = []
    for document in DOCUMENTS:
        copy = tmp_path / Path(document).name
        shutil.copy(ROOT / document, copy)
        updated += update_tables(copy, ROOT / 'bench' / 'results')
        assert copy.read_text() == (ROOT / document).read_text(), 'run `python bench/run_all.py --tables-only`'
    present = {name for name, (filename, _) in RENDERERS.items() if (ROOT / 'bench' / 'results' / filename).is_file()}
    assert set(updated) - {'parameters'} == present


def test_update_replaces_only_the_marked_block(tmp_path):
    """Text outside the markers is kept; a table whose JSON is missing keeps its old text."""
    results = tmp_path / 'results'
    results.mkdir()
    shutil.copy(ROOT / 'bench' / 'results' / 'synthetic.json', results / 'synthetic.json')
    readme = tmp_path / 'README.md'
    readme.write_text('intro\n<!-- bench:synthetic -->\nold\n<!-- /bench:synthetic -->\n'
                      '<!-- bench:models -->\nkeep me\n<!-- /bench:models -->\noutro\n')
    assert update_tables(readme, results) == ['synthetic']
    text = readme.read_text()
    assert text.startswith('intro\n') and text.endswith('outro\n')
    assert 'old' not in text and 'keep me' in text and '| outdoor | 96x320 |' in text


def test_node_parameter_table_is_rendered_from_params_specs(tmp_path):
    """docs/node.md lists every parameter once, with its default and meaning from params.SPECS; a parameter
    added, removed or redescribed in params.py without re-rendering fails here."""
    node_doc = (ROOT / 'docs' / 'node.md').read_text()
    block = node_doc.split('<!-- parameters -->\n', 1)[1].split('\n<!-- /parameters -->', 1)[0]
    assert block == parameters_table(), 'run `python bench/run_all.py --tables-only`'
    rows = block.splitlines()[2:]
    assert [row.split(' | ')[0].removeprefix('| ').strip('`') for row in rows] == list(SPECS)
    assert '| `max_input_pixels` | int | `8294400` | 1 to 1073741824 | no |' in block
    assert '| `rectify` | bool | `false` |  | yes |' in block
