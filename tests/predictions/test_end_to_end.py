"""From raw records to an active model: demo district, feature store, `manage train_model`."""

from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from apps.predictions.models import ModelStatus, ModelVersion, TrainingRun, TrainingStatus
from apps.predictions.selectors import model_version_active

pytestmark = pytest.mark.django_db


@pytest.fixture
def built_district() -> None:
    # 2025 is a whole year (its label windows are closed); 2026 stops at the as-of
    # date, so its windows are open and it gives no training samples.
    call_command(
        "generate_demo_data",
        "--schools=3",
        "--students=400",
        "--years=2",
        "--seed=11",
        "--as-of=2026-09-30",
        stdout=StringIO(),
    )
    call_command("build_features", stdout=StringIO())


def test_manage_train_model_trains_on_the_feature_store_and_promotes(
    built_district: None, model_dir: Path
) -> None:
    from apps.features.selectors import feature_set_current
    from ml.checkpoint import load_checkpoint

    out = StringIO()
    call_command(
        "train_model",
        "--epochs=1",
        "--hidden-size=16",
        "--prediction-weeks=4",
        "--device=cpu",
        "--threads=1",
        "--promote",
        stdout=out,
    )
    text = out.getvalue()
    assert "epoch 1/1" in text and "samples: year 2025" in text
    assert "year 2026 skipped" in text  # its windows are open: not even read
    assert "It is now the active model." in text
    version = model_version_active()
    assert version is not None and version.status == ModelStatus.ACTIVE
    feature_set = feature_set_current()
    assert version.feature_version == feature_set.version
    assert version.feature_spec["feature_columns"] == list(feature_set.columns)
    assert version.dataset["academic_years"] == [2025]
    assert set(version.baseline_metrics) == {"indicator", "logistic", "gbt"}
    loaded = load_checkpoint(version.path, expected_feature_version=feature_set.version)
    assert loaded.model_config.n_seq_features == len(feature_set.columns)
    run = TrainingRun.objects.get()
    assert run.status == TrainingStatus.SUCCEEDED and run.model_version == version
    assert run.progress["promoted"] is True
    # The demo runs the command on every start: with a model active it does nothing.
    again = StringIO()
    call_command("train_model", "--if-none-active", "--promote", stdout=again)
    assert "already active" in again.getvalue()
    assert ModelVersion.objects.count() == 1


def test_without_features_the_command_fails_with_a_clear_message(model_dir: Path) -> None:
    from django.core.management import CommandError

    with pytest.raises(CommandError, match="No labelled samples"):
        call_command("train_model", "--from=2030-01-01", "--to=2030-06-30", stdout=StringIO())
    assert TrainingRun.objects.get().status == TrainingStatus.FAILED
    assert not ModelVersion.objects.exists()
