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


def test_normalizer_clips_outliers_and_old_dicts_keep_no_clipping() -> None:
    rng = np.random.default_rng(0)
    seq = rng.normal(size=(500, 4, 1)).astype(np.float32)
    seq[0, 0, 0] = 1e6  # a typo that would otherwise be a ~45-sigma input
    static = rng.normal(size=(500, 1)).astype(np.float32)
    static[1, 0] = -1e6
    arrays = SequenceArrays(seq, np.full(500, 4), static, np.zeros((500, 0)))
    norm = Normalizer.fit(arrays, clip=3.0)
    x, _ = norm.transform_seq(arrays.seq, arrays.lengths)
    z = norm.transform_static(arrays.static_num)
    assert x[0, 0, 0] == pytest.approx(3.0) and z[1, 0] == pytest.approx(-3.0)
    assert np.abs(x).max() <= 3.0 and np.abs(z).max() <= 3.0
    # Values inside the band are untouched.
    inside = np.abs((seq - norm.seq_mean) / norm.seq_std) < 3.0
    np.testing.assert_allclose(x[inside], ((seq - norm.seq_mean) / norm.seq_std)[inside])
    assert Normalizer.from_dict(norm.to_dict()).clip == 3.0
    assert Normalizer.fit(arrays).clip == 10.0
    # A checkpoint written before clipping existed has no "clip": its scores must not move.
    old = {k: v for k, v in norm.to_dict().items() if k != "clip"}
    unclipped, _ = Normalizer.from_dict(old).transform_seq(arrays.seq, arrays.lengths)
    assert unclipped[0, 0, 0] > 40.0
    with pytest.raises(ValueError):
        Normalizer.fit(arrays, clip=0.0)


def _plain_arrays(n: int = 400, t: int = 6, f: int = 4) -> SequenceArrays:
    rng = np.random.default_rng(1)
    return SequenceArrays(
        rng.normal(size=(n, t, f)).astype(np.float32),
        np.full(n, t),
        np.zeros((n, 0)),
        rng.integers(0, 3, size=(n, 2)),
    )


def test_category_dropout_maps_values_to_unknown_only_while_augmenting() -> None:
    arrays = _plain_arrays()
    data = Normalizer.fit(arrays).transform(arrays)
    ds = SequenceDataset(data, augment=True, cat_dropout_prob=0.3, seed=2)
    cats = ds[list(range(400))].static_cat.numpy()
    dropped = cats == -1
    assert 0.25 < dropped.mean() < 0.35
    np.testing.assert_array_equal(cats[~dropped], arrays.static_cat[~dropped])
    np.testing.assert_array_equal(ds[list(range(400))].static_cat.numpy(), cats)
    assert (data.static_cat >= 0).all()  # the stored arrays are never modified
    plain = SequenceDataset(data, cat_dropout_prob=0.3)  # augment=False: scoring path
    np.testing.assert_array_equal(plain[list(range(400))].static_cat.numpy(), arrays.static_cat)


def test_feature_group_dropout_hides_a_whole_group_for_a_whole_student() -> None:
    arrays = _plain_arrays()
    data = Normalizer.fit(arrays).transform(arrays)
    ds = SequenceDataset(
        data, augment=True, feature_groups=[(0, 1), (3,)], feature_group_dropout_prob=0.25, seed=3
    )
    mask = ds[list(range(400))].obs_mask.numpy().astype(bool)
    # Per student and column: hidden in every week or in none.
    per_student = mask.all(axis=1) | ~mask.any(axis=1)
    assert per_student.all()
    hidden = ~mask.any(axis=1)  # [N, F]
    np.testing.assert_array_equal(hidden[:, 0], hidden[:, 1])  # a group goes together
    assert not hidden[:, 2].any()  # column 2 is in no group
    assert 0.18 < hidden[:, 0].mean() < 0.32 and 0.18 < hidden[:, 3].mean() < 0.32
    assert not np.array_equal(hidden[:, 0], hidden[:, 3])  # groups drop independently
    with pytest.raises(ValueError):
        SequenceDataset(data, feature_groups=[(4,)])
