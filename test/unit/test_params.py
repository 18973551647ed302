"""params: defaults, validation errors that name the parameter, and the shipped params file."""
from pathlib import Path

import pytest

from depth_kd_ros.params import (
    FIELD_NAMES,
    RUNTIME_NAMES,
    SPECS,
    NodeParams,
    ParameterError,
    load_params_file,
    params_files_in_args,
    params_from_dict,
    unmatched_section_hint,
)

ROOT = Path(__file__).resolve().parents[2]


def test_shipped_params_file_equals_the_defaults():
    """config/mono_depth.yaml must list every parameter with the table's default (no drift)."""
    assert load_params_file(str(ROOT / 'config' / 'mono_depth.yaml')) == NodeParams()
    text = (ROOT / 'config' / 'mono_depth.yaml').read_text()
    assert all(f'    {name}:' in text for name in FIELD_NAMES)


def test_every_parameter_has_a_description():
    """The node builds ParameterDescriptors from these; an empty description is a doc bug."""
    assert all(spec.metadata['description'] for spec in SPECS.values())


@pytest.mark.parametrize(('changes', 'name'), [
    ({'backend': 'tensorflow'}, 'backend'),
    ({'points_stride': 0}, 'points_stride'),
    ({'points_stride': 2.5}, 'points_stride'),
    ({'points_stride': True}, 'points_stride'),
    ({'uncertainty_threshold': float('nan')}, 'uncertainty_threshold'),
    ({'publish_points': 'yes'}, 'publish_points'),
    ({'points_min_range': 5.0, 'points_max_range': 2.0}, 'points_min_range'),
    ({'colored_min_depth': 9.0, 'colored_max_depth': 3.0}, 'colored_min_depth'),
    ({'input_transport': 'theora'}, 'input_transport'),
    ({'no_such_parameter': 1}, 'no_such_parameter'),
])
def test_invalid_values_name_the_parameter(changes, name):
    """Each bad value raises ParameterError whose message starts with the parameter's name."""
    with pytest.raises(ParameterError, match=f'^{name}:'):
        NodeParams().replace(**changes)


def test_ints_are_accepted_for_float_parameters_from_files():
    """YAML writes `5` for 5.0; the params file loader must accept it for float parameters."""
    assert params_from_dict({'points_max_range': 5}).points_max_range == 5.0


def test_runtime_parameters_are_the_safe_ones():
    """Only per-frame settings may change while running; model and QoS need a restart."""
    assert {'points_stride', 'points_min_range', 'points_max_range', 'publish_colored',
            'uncertainty_threshold'} <= set(RUNTIME_NAMES)
    assert not {'model_path', 'backend', 'input_transport', 'output_reliable'} & set(RUNTIME_NAMES)


@pytest.mark.parametrize('text', ['other_node:\n  ros__parameters: {}\n', 'mono_depth_node: [1]\n', ': :\n'])
def test_params_file_errors(tmp_path, text):
    """A params file without our section, or not YAML, raises ParameterError naming the file."""
    path = tmp_path / 'p.yaml'
    path.write_text(text)
    with pytest.raises(ParameterError, match='p.yaml'):
        load_params_file(str(path))


def test_params_files_are_read_from_the_ros_args_sections_only():
    """--params-file counts inside --ros-args ... [--], as rcl parses it; a program argument of that name does not."""
    argv = ['node', '--params-file', 'app.yaml', '--ros-args', '-r', '__ns:=/a', '--params-file', 'a.yaml', '--',
            'x', '--ros-args', '--params-file', 'b.yaml']
    assert params_files_in_args(argv) == ['a.yaml', 'b.yaml']


@pytest.mark.parametrize(('keys', 'fqn', 'hinted'), [
    (['mono_depth_node'], '/front/mono_depth_node', True),
    (['/mono_depth_node'], '/front/mono_depth_node', True),
    (['/rear/mono_depth_node'], '/front/mono_depth_node', True),
    (['mono_depth_node', '/**'], '/front/mono_depth_node', True),  # /** applies, the named section does not
    (['mono_depth_node'], '/mono_depth_node', False),
    (['/front/mono_depth_node'], '/front/mono_depth_node', False),
    (['/front/mono_depth_node', '/rear/mono_depth_node'], '/front/mono_depth_node', False),
    (['/**'], '/front/mono_depth_node', False),
    (['camera_driver'], '/front/mono_depth_node', False),
    (['mono_depth_node'], '/front/left_depth', True),  # renamed by -r __node:=left_depth
])
def test_unmatched_section_hint_follows_rclpys_matching(tmp_path, keys, fqn, hinted):
    """rclpy applies a section keyed by the node's fully qualified name or /** (a key without a leading slash
    is rooted); a section naming the node that does not apply gets a hint with the namespace and both keys."""
    path = tmp_path / 'p.yaml'
    path.write_text(''.join(f"'{key}':\n  ros__parameters:\n    points_stride: 3\n" for key in keys))
    hint = unmatched_section_hint([str(path), str(tmp_path / 'absent.yaml')], fqn)
    assert bool(hint) == hinted, hint
    if hinted:
        assert f"'{fqn}'" in hint and "'/**'" in hint and str(path) in hint
        assert f'namespace {fqn.rpartition("/")[0]}' in hint
