from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from ml.checkpoint import IncompatibleFeatureVersion, load_checkpoint, read_metadata
from ml.data import SequenceArrays
from ml.inference import Scorer, select_device
from ml.metrics import roc_auc
from ml.train import TrainResult


def test_round_trip_gives_identical_scores(
    trained: TrainResult, checkpoint_path: Path, tiny_split: tuple[SequenceArrays, SequenceArrays]
) -> None:
    _, val = tiny_split
    loaded = load_checkpoint(checkpoint_path, expected_feature_version="weekly-v1")
    data = trained.normalizer.transform(val)
    with torch.no_grad():
        batch = [torch.from_numpy(a) for a in (data.x, data.mask.astype(np.float32))]
        rest = [torch.from_numpy(data.lengths), torch.from_numpy(data.static_num)]
        inputs = (*batch, *rest, torch.from_numpy(data.static_cat))
        expected = trained.model.calibrated_proba(trained.model(*inputs)).numpy()
    np.testing.assert_allclose(Scorer(loaded, "cpu").score(val, batch_size=37), expected, atol=1e-6)
    assert loaded.feature_columns[0] == "attendance_rate"
    assert loaded.static_categorical_columns == ["gender", "region"]
    assert loaded.thresholds == trained.thresholds
    assert loaded.temperature == pytest.approx(trained.temperature)
    assert loaded.metrics["roc_auc"] == trained.val_metrics["roc_auc"]
    assert read_metadata(checkpoint_path)["feature_version"] == "weekly-v1"


def test_it_refuses_a_different_feature_version(checkpoint_path: Path) -> None:
    with pytest.raises(IncompatibleFeatureVersion, match="weekly-v1"):
        load_checkpoint(checkpoint_path, expected_feature_version="weekly-v2")


def test_it_refuses_a_file_that_is_not_a_checkpoint(tmp_path: Path) -> None:
    from ml.checkpoint import CheckpointError

    torch.save({"weights": torch.zeros(1)}, tmp_path / "x.pt")
    with pytest.raises(CheckpointError):
        load_checkpoint(tmp_path / "x.pt")


def test_scorer_assigns_risk_levels_and_checks_shapes(
    checkpoint_path: Path, tiny_split: tuple[SequenceArrays, SequenceArrays]
) -> None:
    _, val = tiny_split
    scorer = Scorer(load_checkpoint(checkpoint_path))
    probs, attention = scorer.score_with_attention(val)
    assert set(scorer.risk_levels(probs)) <= {"high", "watch", "low"}
    np.testing.assert_allclose(attention.sum(1), 1.0, atol=1e-5)
    with pytest.raises(ValueError):
        scorer.score(SequenceArrays(val.seq[:, :, :2], val.lengths, val.static_num, val.static_cat))


def test_dynamic_int8_agrees_with_float(
    checkpoint_path: Path, tiny_split: tuple[SequenceArrays, SequenceArrays]
) -> None:
    _, val = tiny_split
    scorer = Scorer(load_checkpoint(checkpoint_path), "cpu")
    fp32 = scorer.score(val)
    int8_scorer = scorer.quantize_dynamic_int8()
    int8 = int8_scorer.score(val)
    assert int8_scorer.quantized and not scorer.quantized
    assert np.corrcoef(fp32, int8)[0, 1] > 0.99
    assert abs(roc_auc(val.labels, fp32) - roc_auc(val.labels, int8)) < 0.02
    # The float scorer is untouched by quantising a copy.
    np.testing.assert_array_equal(scorer.score(val), fp32)


def test_select_device() -> None:
    assert select_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert select_device(None).type == expected
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError):
            select_device("cuda")
