"""MLflow receives each run's parameters, metrics and artefacts when a URI is set."""

from pathlib import Path

import pytest
from django.test import override_settings

from apps.predictions.services import TrainingOptions, model_version_train
from tests.predictions.conftest import ArraySource, tiny_options

pytestmark = pytest.mark.django_db


def test_a_run_is_logged_to_a_local_mlflow_store(
    district: ArraySource, model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow.tracking import MlflowClient

    # MLflow 3 keeps its file store only behind this opt-in; a server or a database
    # URI needs nothing of the kind.
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    uri = (tmp_path / "mlruns").as_uri()
    with override_settings(MLFLOW_TRACKING_URI=uri, MLFLOW_EXPERIMENT_NAME="edupulse-test"):
        version = model_version_train(
            options=TrainingOptions.from_dict(tiny_options(epochs=2)), source=district
        )
    assert version.tracking_error == ""
    client = MlflowClient(tracking_uri=uri)
    run = client.get_run(version.mlflow_run_id)
    assert run.info.status == "FINISHED"
    assert run.info.run_name == version.name
    assert run.data.params["epochs"] == "2"
    assert run.data.params["feature_version"] == "test-v1"
    assert run.data.metrics["test_roc_auc"] == pytest.approx(version.metrics["roc_auc"])
    assert run.data.metrics["baseline_gbt_roc_auc"] == pytest.approx(
        version.baseline_metrics["gbt"]["roc_auc"]
    )
    history = client.get_metric_history(run.info.run_id, "val_pr_auc")
    assert sorted(m.step for m in history) == [0, 1]
    artefacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert artefacts == {Path(version.file_path).name, "model_card.json"}


def test_a_tracking_failure_keeps_the_model_and_records_why(
    district: ArraySource, model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without the opt-in, MLflow 3 refuses the file store: the run must still be saved.
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    with override_settings(MLFLOW_TRACKING_URI=(tmp_path / "mlruns").as_uri()):
        version = model_version_train(
            options=TrainingOptions.from_dict(tiny_options(epochs=1)), source=district
        )
    assert version.mlflow_run_id == ""
    assert "MlflowException" in version.tracking_error
    assert version.path.is_file()


def test_without_a_uri_nothing_is_tracked(district: ArraySource, model_dir: Path) -> None:
    version = model_version_train(
        options=TrainingOptions.from_dict(tiny_options(epochs=1)), source=district
    )
    assert (version.mlflow_run_id, version.tracking_error) == ("", "")
