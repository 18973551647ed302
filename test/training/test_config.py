"""The typed configuration: YAML + dotted overrides, checked types, rejected unknown keys."""
import pytest
import yaml

from disdepth.config import ConfigError, load_config, save_config


def _write(tmp_path, values):
    path = tmp_path / 'cfg.yaml'
    path.write_text(yaml.safe_dump(values))
    return path


def test_yaml_and_overrides_apply_with_types(tmp_path):
    """Overrides are parsed as YAML scalars/lists and win over the file."""
    path = _write(tmp_path, {'output_dir': 'runs/x', 'trainer': {'max_steps': 5}})
    cfg = load_config(path, ['trainer.max_steps=7', 'optim.lr=3e-4', 'model.lgconv.stages=[2,3]',
                             'distill.attention=uniform', 'model.pretrained=null'])
    assert cfg.trainer.max_steps == 7
    assert cfg.optim.lr == pytest.approx(3e-4)
    assert cfg.model.lgconv.stages == [2, 3]
    assert cfg.distill.attention == 'uniform'
    assert cfg.model.pretrained is None


def test_int_is_accepted_where_float_is_expected(tmp_path):
    """`max_depth: 10` in YAML is an int; a float field must take it."""
    cfg = load_config(_write(tmp_path, {'model': {'max_depth': 10}}))
    assert isinstance(cfg.model.max_depth, float) and cfg.model.max_depth == 10.0


@pytest.mark.parametrize('override, words', [
    ('trainer.max_stepz=3', ['max_stepz', 'max_steps']),
    ('trainer.max_steps=many', ['trainer.max_steps', 'int']),
    ('model.head=cubic', ['model.head', 'bins']),
    ('model.decoder_separable_steps=3', ['model.decoder_separable_steps', 'list']),
    ('model.lgconv.depthwise_proj=sparse', ['model.lgconv.depthwise_proj', 'channelwise']),
    ('model.lgconv.grouped_depthwise_proj=maybe', ['grouped_depthwise_proj', 'depthwise_proj']),
    ('model=3', ['model', 'mapping']),
    ('trainer.max_steps', ['section.key=value']),
])
def test_bad_overrides_name_the_key(override, words):
    """A typo or wrong type must fail before training, naming the key (and the valid ones)."""
    with pytest.raises(ConfigError) as info:
        load_config(None, [override])
    for word in words:
        assert word in str(info.value)


def test_unknown_key_in_file_is_rejected(tmp_path):
    """Unknown keys in a YAML file are errors, not silently ignored."""
    with pytest.raises(ConfigError, match='lgconv.head_count'):
        load_config(_write(tmp_path, {'model': {'lgconv': {'head_count': 4}}}))


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match='nope.yaml'):
        load_config(tmp_path / 'nope.yaml')


def test_saved_config_round_trips(tmp_path):
    """output_dir/config.yaml reproduces the run's resolved config exactly."""
    cfg = load_config(None, ['task=teacher', 'data.dataset=synthetic_indoor', 'model.max_depth=10'])
    save_config(cfg, tmp_path / 'config.yaml')
    assert load_config(tmp_path / 'config.yaml') == cfg


@pytest.mark.parametrize('old, new', [(True, 'grouped'), (False, 'dense')])
def test_the_replaced_projection_key_still_loads(tmp_path, old, new):
    """Configs and checkpoint metadata written before ``lgconv.depthwise_proj`` replaced the boolean
    ``lgconv.grouped_depthwise_proj`` still load, as the architecture they were trained with."""
    cfg = load_config(_write(tmp_path, {'model': {'lgconv': {'grouped_depthwise_proj': old}}}))
    assert cfg.model.lgconv.depthwise_proj == new
