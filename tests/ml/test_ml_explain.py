from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from ml.checkpoint import load_checkpoint
from ml.data import SequenceArrays
from ml.explain import _integrated_gradients, explain
from ml.inference import Scorer


def test_the_feature_that_drives_risk_ranks_first(
    checkpoint_path: Path, tiny_split: tuple[SequenceArrays, SequenceArrays]
) -> None:
    _, val = tiny_split
    scorer = Scorer(load_checkpoint(checkpoint_path), "cpu")
    probs = scorer.score(val)
    riskiest = val.subset(np.argsort(-probs)[:20])
    explanations = explain(scorer, riskiest, top_k=3, static_numeric_names=["age", "distance"])
    assert len(explanations) == 20
    top = Counter((factors[0].feature, factors[0].direction) for factors in explanations)
    # The synthetic dropout signal is a fall in attendance (feature 0).
    assert top[("attendance_rate", "raises")] >= 12, top
    for factors, length in zip(explanations, riskiest.lengths, strict=True):
        assert 1 <= len(factors) <= 3
        assert sum(f.weight for f in factors) <= 1.0 + 1e-6
        for f in factors:
            assert all(0 <= w < length for w in f.weeks)
            assert f.weeks == sorted(f.weeks)
        json.dumps([f.to_dict() for f in factors])
    attendance = next(f for f in explanations[0] if f.feature == "attendance_rate")
    assert attendance.weeks and attendance.value_recent is not None
    assert attendance.value_recent < attendance.value_baseline


def test_integrated_gradients_are_complete(
    checkpoint_path: Path, tiny_split: tuple[SequenceArrays, SequenceArrays]
) -> None:
    # Attributions sum to f(x) - f(baseline), up to the Riemann error.
    _, val = tiny_split
    loaded = load_checkpoint(checkpoint_path)
    data = loaded.normalizer.transform(val.subset(range(8)))
    inputs = (
        torch.from_numpy(data.x),
        torch.from_numpy(data.mask.astype(np.float32)),
        torch.from_numpy(data.lengths),
        torch.from_numpy(data.static_num),
        torch.from_numpy(data.static_cat),
    )
    attr_x, attr_s = _integrated_gradients(loaded.model, inputs, torch.zeros_like(inputs[0]), 64)
    with torch.no_grad():
        full = loaded.model(*inputs)
        base = loaded.model(
            torch.zeros_like(inputs[0]), *inputs[1:3], torch.zeros_like(inputs[3]), inputs[4]
        )
    total = attr_x.sum((1, 2)) + attr_s.sum(1)
    torch.testing.assert_close(total, full - base, atol=0.05, rtol=0.05)


def test_quantized_scorers_and_own_mean_baselines_explain_too(
    checkpoint_path: Path, tiny_split: tuple[SequenceArrays, SequenceArrays]
) -> None:
    _, val = tiny_split
    scorer = Scorer(load_checkpoint(checkpoint_path), "cpu").quantize_dynamic_int8()
    explanations = explain(scorer, val.subset(range(5)), baseline="own_mean", top_k=2)
    assert all(len(f) <= 2 for f in explanations)
    assert all(f.kind == "weekly" for factors in explanations for f in factors)


def test_explaining_while_other_threads_score_is_safe(
    checkpoint_path: Path, tiny_split: tuple[SequenceArrays, SequenceArrays]
) -> None:
    # A web process explains one request while its batcher thread scores others
    # on the same model; moving the model between devices mid-forward broke the
    # GRU's flattened weights.
    from concurrent.futures import ThreadPoolExecutor

    _, val = tiny_split
    scorer = Scorer(load_checkpoint(checkpoint_path), "cpu")
    expected = scorer.score(val)
    subset = val.subset(np.arange(8))

    def work(i: int) -> np.ndarray:
        if i % 2:
            explain(scorer, subset, top_k=2, steps=4)
        return scorer.score(val)

    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(work, range(24)))
    for probs in results:
        np.testing.assert_allclose(probs, expected, rtol=1e-5, atol=1e-6)


def test_the_scoring_pass_attention_gives_the_same_explanations(
    checkpoint_path: Path, tiny_split: tuple[SequenceArrays, SequenceArrays]
) -> None:
    # Batch scoring hands over the pooling weights of its forward pass instead of
    # explain computing them again.
    _, val = tiny_split
    scorer = Scorer(load_checkpoint(checkpoint_path), "cpu")
    some = val.subset(range(12))
    _, attention = scorer.score_with_attention(some)
    reused = explain(scorer, some, static_numeric_names=["age", "distance"], attention=attention)
    computed = explain(scorer, some, static_numeric_names=["age", "distance"])
    assert [[f.to_dict() for f in s] for s in reused] == [
        [f.to_dict() for f in s] for s in computed
    ]
    # The weights passed in are the ones used: all of it on the least attended week
    # changes which weeks are named.
    least = np.where(attention > 0, attention, np.inf).argmin(1)
    moved = np.zeros_like(attention)
    moved[np.arange(len(least)), least] = 1.0
    other = explain(scorer, some, static_numeric_names=["age", "distance"], attention=moved)
    assert [[f.weeks for f in s] for s in other] != [[f.weeks for f in s] for s in computed]
