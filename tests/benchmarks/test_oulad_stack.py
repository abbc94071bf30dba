"""The OULAD benchmark's leave-module-out ensemble and its stack with logistic regression."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import oulad  # noqa: E402
from oulad_lib.features import SEQ_FEATURES, STATIC_CAT_FEATURES, STATIC_NUM_FEATURES  # noqa: E402

torch.set_num_threads(1)


def test_each_module_is_left_out_by_exactly_one_member_when_members_match_modules() -> None:
    holdouts = oulad.module_holdouts(np.array([1, 1, 2, 3, 3, 2]), members=3, seed=0)

    assert holdouts is not None
    assert sorted(int(h[0]) for h in holdouts) == [1, 2, 3]
    assert all(len(h) == 1 for h in holdouts)


def test_every_module_is_left_out_when_there_are_more_modules_than_members() -> None:
    holdouts = oulad.module_holdouts(np.arange(1, 7), members=3, seed=5)

    assert holdouts is not None
    assert sorted(int(c) for h in holdouts for c in h) == [1, 2, 3, 4, 5, 6]


def test_there_are_no_module_folds_with_a_single_known_module() -> None:
    # Unknown (0) is not a module of its own.
    assert oulad.module_holdouts(np.array([0, 2, 2]), members=3, seed=0) is None


def test_modules_a_member_never_saw_read_as_unknown() -> None:
    cats = np.ones((3, len(STATIC_CAT_FEATURES)), dtype=np.int64)
    cats[:, oulad.MODULE_COLUMN] = [1, 2, 3]

    masked = oulad._mask_modules(cats, known=np.array([1, 3]))

    assert masked[:, oulad.MODULE_COLUMN].tolist() == [1, 0, 3]
    assert (np.delete(masked, oulad.MODULE_COLUMN, axis=1) == 1).all()
    assert cats[1, oulad.MODULE_COLUMN] == 2  # the input is left alone


def _arrays(n: int = 240, weeks: int = 5, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) < 0.3).astype(np.float32)
    seq = rng.normal(size=(n, weeks, len(SEQ_FEATURES))).astype(np.float32)
    seq[:, :, 0] -= labels[:, None]  # leavers click less
    static_cat = np.ones((n, len(STATIC_CAT_FEATURES)), dtype=np.int64)
    static_cat[:, oulad.MODULE_COLUMN] = np.arange(n) % 3 + 1
    return {
        "seq": seq,
        "lengths": rng.integers(2, weeks + 1, size=n),
        "static_num": rng.normal(size=(n, len(STATIC_NUM_FEATURES))).astype(np.float32),
        "static_cat": static_cat,
        "labels": labels,
    }


@pytest.mark.slow
def test_the_stack_is_fitted_on_leave_module_out_predictions() -> None:
    arrays = _arrays()
    settings = oulad.EnsembleSettings(
        members=3, epochs=2, hidden_size=8, fusion_hidden=8, split="module"
    )
    cards = [4] * len(STATIC_CAT_FEATURES)

    results = oulad.train_ensemble(arrays, np.arange(len(arrays["labels"])), cards, settings)
    oof = oulad.out_of_fold_logits(results, arrays)
    stack = oulad.fit_stack(arrays, results, seed=0)

    assert oof is not None and np.isfinite(oof).all()
    for result in results:
        left_out = np.unique(arrays["static_cat"][result.extra["val_index"], oulad.MODULE_COLUMN])
        assert not np.isin(left_out, result.extra["known_modules"]).any()
    assert stack is not None and stack.weights.shape == (2,)
    scored = oulad._to_sequence_arrays(arrays)
    risk = stack.predict(oulad.score_ensemble(results, scored), scored)
    assert risk.shape == (len(arrays["labels"]),)
    assert ((risk > 0) & (risk < 1)).all()


def test_a_registration_split_has_no_stack() -> None:
    arrays = _arrays(n=60)
    settings = oulad.EnsembleSettings(
        members=1, epochs=1, hidden_size=8, fusion_hidden=8, split="registration"
    )
    cards = [4] * len(STATIC_CAT_FEATURES)

    results = oulad.train_ensemble(arrays, np.arange(60), cards, settings)

    assert oulad.out_of_fold_logits(results, arrays) is None
    assert oulad.fit_stack(arrays, results, seed=0) is None
