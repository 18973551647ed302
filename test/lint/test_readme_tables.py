"""The docs' numbers come from bench/results/*.json: every number has a script and a file behind it. The node's
parameter table is depth_kd_ros/params.py's, so the reference cannot fall behind the node."""
import json
import shutil
import sys
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


def test_teacher_block_renders_what_bench_teacher_writes(tmp_path):
    """bench/bench_teacher.py's JSON (its own ``summarise`` of per-frame samples) renders into docs/results.md's
    teacher block: a row per stage with the student's and the teacher's p50 and their ratio, the node's end to end,
    the per-frame ratio and both models' export time and size."""
    sys.path.insert(0, str(ROOT / 'bench'))
    try:
        from bench_teacher import summarise
    finally:
        sys.path.remove(str(ROOT / 'bench'))
    models = {name: {'model': f'the {name}', 'input': size, 'export_s': seconds, 'file_mb': mb}
              for name, size, seconds, mb in (('student', [256, 320], 3.2, 5.1), ('teacher', [252, 322], 21.0, 94.3))}
    samples = {'student': {'inference': [20.0, 22.0, 21.0], 'end_to_end': [25.0, 27.0, 26.0]},
               'teacher': {'inference': [300.0, 330.0, 310.0], 'end_to_end': [305.0, 335.0, 315.0]}}
    node = {'student': {'frames_sent': 30, 'frames_answered': 30, 'rate_hz': 2.0, 'answered_rate_hz': 2.0,
                        'p50_ms': 40.0, 'p90_ms': 45.0, 'min_ms': 35.0},
            'teacher': {'frames_sent': 30, 'frames_answered': 29, 'rate_hz': 2.0, 'answered_rate_hz': 1.9,
                        'p50_ms': 400.0, 'p90_ms': 450.0, 'min_ms': 350.0}}
    results = tmp_path / 'results'
    results.mkdir()
    (results / 'teacher.json').write_text(json.dumps(summarise(models, samples, node, 1.0)))
    document = tmp_path / 'results.md'
    shutil.copy(ROOT / 'docs' / 'results.md', document)
    assert 'teacher' in update_tables(document, results)
    block = document.read_text().split('<!-- bench:teacher -->\n', 1)[1].split('\n<!-- /bench:teacher -->', 1)[0]
    print(block)
    assert '| inference | 21.00 | 310.00 | 14.76 |' in block
    assert '| end_to_end | 26.00 | 315.00 | 12.12 |' in block
    assert '| node end to end (camera publish to depth received) | 40 | 400 | 10.00 |' in block
    assert 'median **12.2x**' in block and 'exported in 21 s, 94.3 MB' in block and '29/30 frames' in block
