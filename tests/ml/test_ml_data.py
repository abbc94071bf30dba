from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from ml.data import Normalizer, SequenceArrays, SequenceDataset, collate, split_arrays


def _arrays() -> SequenceArrays:
    seq = np.array(
        [
            [[1.0, 10.0], [3.0, np.nan], [99.0, 99.0]],  # week 3 is padding (length 2)
            [[5.0, 20.0], [np.nan, 30.0], [7.0, 40.0]],
        ],
        dtype=np.float32,
    )
    return SequenceArrays(
        seq=seq,
        lengths=np.array([2, 3]),
        static_num=np.array([[1.0], [np.nan]]),
        static_cat=np.array([[0], [1]]),
        labels=np.array([0, 1]),
        group={"gender": np.array(["f", "m"])},
    )


def test_normalizer_ignores_missing_values_and_padding() -> None:
    norm = Normalizer.fit(_arrays())
    # Feature 0 observed values: 1, 3, 5, 7 (99 is padding); feature 1: 10, 20, 30, 40.
    np.testing.assert_allclose(norm.seq_mean, [4.0, 25.0])
    np.testing.assert_allclose(norm.seq_std, [np.sqrt(5.0), np.sqrt(125.0)], rtol=1e-6)
    np.testing.assert_allclose(norm.static_mean, [1.0])


def test_transform_fills_missing_with_zero_after_standardising_and_returns_the_mask() -> None:
    arrays = _arrays()
    norm = Normalizer.fit(arrays)
    x, mask = norm.transform_seq(arrays.seq, arrays.lengths)
    assert mask.tolist() == [
        [[True, True], [True, False], [False, False]],
        [[True, True], [False, True], [True, True]],
    ]
    assert x[0, 1, 1] == 0.0 and x[0, 2, 0] == 0.0
    assert x[0, 0, 0] == pytest.approx((1.0 - 4.0) / np.sqrt(5.0))
    assert norm.transform_static(arrays.static_num)[1, 0] == 0.0


def test_normalizer_round_trips_through_a_dict() -> None:
    norm = Normalizer.fit(_arrays())
    again = Normalizer.from_dict(norm.to_dict())
    np.testing.assert_array_equal(norm.seq_mean, again.seq_mean)
    np.testing.assert_array_equal(norm.static_std, again.static_std)


def test_dataset_batches_pad_to_the_longest_student_in_the_batch() -> None:
    arrays = _arrays()
    data = Normalizer.fit(arrays).transform(arrays)
    ds = SequenceDataset(data)
    batch = ds[[0]]
    assert batch.x.shape == (1, 2, 2)
    full = ds[[0, 1]]
    assert full.x.shape == (2, 3, 2)
    assert full.pad_mask.tolist() == [[False, False, True], [False, False, False]]
    stacked = collate([ds[0], ds[1]])
    torch.testing.assert_close(stacked.x, full.x)
    torch.testing.assert_close(stacked.obs_mask, full.obs_mask)
    assert stacked.lengths.tolist() == [2, 3]


def test_augmentation_truncates_within_bounds_and_drops_features_deterministically() -> None:
    rng = np.random.default_rng(0)
    seq = rng.normal(size=(200, 12, 3)).astype(np.float32)
    arrays = SequenceArrays(seq, np.full(200, 12), np.zeros((200, 0)), np.zeros((200, 0)))
    data = Normalizer.fit(arrays).transform(arrays)
    ds = SequenceDataset(
        data, augment=True, truncation_prob=0.5, min_weeks=3, feature_dropout_prob=0.2, seed=1
    )
    batch = ds[list(range(200))]
    lengths = batch.lengths.numpy()
    assert lengths.min() >= 3 and lengths.max() == 12
    assert 0.3 < (lengths < 12).mean() < 0.7
    observed = batch.obs_mask.numpy()
    valid = np.arange(12)[None, :] < lengths[:, None]
    assert observed[~valid].sum() == 0
    assert 0.7 < observed[valid].mean() < 0.9
    assert (batch.x.numpy()[observed == 0] == 0).all()
    again = ds[list(range(200))]
    torch.testing.assert_close(again.x, batch.x)
    ds.set_epoch(1)
    assert not torch.equal(ds[list(range(200))].lengths, batch.lengths)


def test_npz_round_trip_and_stratified_split(tmp_path: Path) -> None:
    arrays = _arrays()
    arrays.save_npz(tmp_path / "a.npz")
    loaded = SequenceArrays.load_npz(tmp_path / "a.npz")
    np.testing.assert_array_equal(loaded.seq, arrays.seq)
    assert loaded.group["gender"].tolist() == ["f", "m"]
    big = arrays.subset(np.repeat([0, 1], 10))
    train, val = split_arrays(big, 0.5, seed=0)
    assert len(train) == len(val) == 10
    assert val.labels is not None and val.labels.sum() == 5


def test_it_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError):
        SequenceArrays(np.zeros((2, 3, 1)), np.array([1, 2, 3]), np.zeros((2, 0)), np.zeros((2, 0)))
    with pytest.raises(ValueError):
        SequenceArrays(np.zeros((2, 3, 1)), np.array([1, 4]), np.zeros((2, 0)), np.zeros((2, 0)))
