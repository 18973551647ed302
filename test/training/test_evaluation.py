"""disdepth.evaluation: flip averaging, shape checks, previews, and datasets usable by DataLoader workers."""
from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from disdepth.config import DataConfig
from disdepth.data import build_dataset
from disdepth.evaluation import evaluate, predict, preview

CFG = DataConfig(dataset='synthetic_outdoor', height=24, width=64, eval_height=24, eval_width=64,
                 num_train=4, num_test=2)


def ramp(image):
    """Depth 1 + u metres: not mirror-symmetric, so flip averaging must change it."""
    b, _, h, w = image.shape
    return torch.arange(1, w + 1, dtype=torch.float32).expand(b, 1, h, w)


def test_flip_average_mirrors_the_second_prediction_back():
    """(f(x) + flip(f(flip(x)))) / 2 of a ramp 1..W is the constant (W + 1) / 2."""
    out = predict(ramp, torch.zeros(2, 3, 4, 6), flip_average=True)
    np.testing.assert_allclose(out, 3.5)
    np.testing.assert_allclose(predict(ramp, torch.zeros(1, 3, 4, 6))[0, 0, 0], np.arange(1, 7))


def test_wrong_prediction_shape_is_an_error():
    """A predict_fn that returns another size must fail, not be silently broadcast."""
    with pytest.raises(ValueError, match='expected'):
        predict(lambda x: torch.ones(1, 1, 2, 2), torch.zeros(1, 3, 4, 6))


def test_evaluate_with_ground_truth_is_perfect_and_batches(tmp_path):
    """Predicting the ground truth gives abs_rel 0 and d1 1 for any batch size; previews are 2x2 grids."""
    dataset = build_dataset(CFG, 'test')
    gts = {i: dataset[i]['depth'] for i in range(len(dataset))}
    calls = iter(range(len(dataset)))

    def oracle(image):
        return torch.stack([gts[next(calls)] for _ in range(image.shape[0])])

    m = evaluate(oracle, dataset, batch_size=1, preview_dir=tmp_path, num_previews=5)
    assert m['abs_rel'] == 0 and m['d1'] == 1 and m['num_images'] == 2
    assert len(list(tmp_path.glob('*.png'))) == 2
    calls = iter(range(len(dataset)))
    assert evaluate(oracle, dataset, batch_size=2)['rmse'] == 0
    item = dataset[0]
    grid = preview(item['image'].numpy(), item['depth'][0].numpy(), item['depth'][0].numpy(),
                   item['mask'][0].numpy(), 80.0)
    assert grid.shape == (48, 128, 3) and grid.dtype == np.uint8


def test_datasets_pickle_for_workers_and_augment_per_call():
    """Workers receive pickled datasets; train augmentation draws fresh randomness per call."""
    test_set = build_dataset(CFG, 'test')
    clone = pickle.loads(pickle.dumps(test_set))
    assert torch.equal(clone[1]['image'], test_set[1]['image'])
    train = build_dataset(CFG, 'train')
    torch.manual_seed(0)
    variants = {train[0]['image'].sum().item() for _ in range(8)}
    assert len(variants) > 1
