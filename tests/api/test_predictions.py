import datetime as dt
from typing import Any

import numpy as np
import pytest
from django.core.cache import cache
from django.test import override_settings
from rest_framework.test import APIClient

from apps.accounts.models import Role
from apps.accounts.services import user_create
from apps.predictions.api.drift import feature_drift, psi_against_normal
from apps.predictions.models import ModelStatus, ModelVersion, Prediction, TrainingRun
from apps.students.models import StaffScope
from tests.api.conftest import assert_error, client_for
from tests.predictions.scoring_support import district_make

pytestmark = pytest.mark.django_db


@pytest.fixture
def scored(tmp_path: Any) -> Any:
    with override_settings(EDUPULSE_MODEL_DIR=tmp_path):
        cache.clear()
        district = district_make(tmp_path)
        users = {role: user_create(username=f"p-{role}", password="pw", role=role) for role in Role}
        for role in (Role.COUNSELOR, Role.ANALYST, Role.DATA_MANAGER):
            StaffScope.objects.create(user=users[role], school=district.schools[0])
        district.users = users  # type: ignore[attr-defined]
        district.as_of = (district.week_start + dt.timedelta(days=2)).isoformat()  # type: ignore[attr-defined]
        yield district


def _mine_and_other(scored: Any) -> tuple[Any, Any]:
    mine = scored.students[0]
    other = next(s for s in scored.students if s.enrollments.get().school != scored.schools[0])
    return mine, other


def test_predict_one_student_by_key_and_by_identifier(scored: Any) -> None:
    client = client_for(scored.users[Role.COUNSELOR])
    mine, _ = _mine_and_other(scored)
    body = client.post(
        "/api/v1/predict", {"student": mine.pk, "as_of": scored.as_of}, format="json"
    ).json()
    assert body["student"] == mine.pk and 0 <= body["probability"] <= 1
    assert body["week_start"] == scored.week_start.isoformat()
    assert set(body["sentences"]) == {"en", "bn"}
    again = client.post(
        "/api/v1/predict", {"student_id": mine.student_id, "as_of": scored.as_of}, format="json"
    ).json()
    assert again["id"] == body["id"]
    # The student now shows a current risk.
    listed = client.get(f"/api/v1/students/{mine.pk}").json()
    assert listed["current_risk"]["prediction"] == body["id"]


def test_predict_refuses_another_schools_student_with_404(scored: Any) -> None:
    client = client_for(scored.users[Role.COUNSELOR])
    _, other = _mine_and_other(scored)
    for payload in ({"student": other.pk}, {"student_id": other.student_id}):
        assert_error(client.post("/api/v1/predict", payload, format="json"), 404, "not_found")
    assert not Prediction.objects.filter(student=other).exists()
    # Not found either among predictions.
    client_for(scored.users[Role.ADMINISTRATOR]).post(
        "/api/v1/predict", {"student": other.pk, "as_of": scored.as_of}, format="json"
    )
    other_prediction = Prediction.objects.get(student=other)
    assert_error(client.get(f"/api/v1/predictions/{other_prediction.pk}"), 404, "not_found")
    assert client.get("/api/v1/predictions").json()["count"] == 0


def test_predict_validation_and_no_model(scored: Any) -> None:
    client = client_for(scored.users[Role.COUNSELOR])
    mine, _ = _mine_and_other(scored)
    error = assert_error(client.post("/api/v1/predict", {}, format="json"), 400, "invalid")
    assert "non_field_errors" in error["details"]
    both = {"student": mine.pk, "student_id": mine.student_id}
    assert_error(client.post("/api/v1/predict", both, format="json"), 400, "invalid")
    # A model trained on other features is refused with the domain error's code.
    ModelVersion.objects.update(feature_version="older-features")
    error = assert_error(
        client.post("/api/v1/predict", {"student": mine.pk}, format="json"),
        409,
        "feature_version_mismatch",
    )
    assert "older-features" in error["message"]
    ModelVersion.objects.update(status=ModelStatus.RETIRED)
    assert_error(
        client.post("/api/v1/predict", {"student": mine.pk}, format="json"), 503, "no_active_model"
    )


def test_predict_batch_small_answers_now(scored: Any) -> None:
    client = client_for(scored.users[Role.COUNSELOR])
    mine, other = _mine_and_other(scored)
    ids = [s.student_id for s in scored.students[:3]] + [other.student_id, "nobody"]
    body = client.post(
        "/api/v1/predict/batch", {"student_ids": ids, "as_of": scored.as_of}, format="json"
    ).json()
    assert [p["student_code"] for p in body["predictions"]] == ids[:3]
    # Out of scope and nonexistent read the same.
    assert body["not_found"] == [other.student_id, "nobody"]


def test_predict_batch_large_becomes_a_task(scored: Any) -> None:
    client = client_for(scored.users[Role.ADMINISTRATOR])
    ids = [s.pk for s in scored.students]
    with override_settings(EDUPULSE_API_BATCH_SYNC_MAX=3):
        response = client.post(
            "/api/v1/predict/batch", {"students": ids, "as_of": scored.as_of}, format="json"
        )
    assert response.status_code == 202, response.content
    task = response.json()["task"]
    assert response.json()["status_url"] == f"/api/v1/tasks/{task}"
    # Celery is eager in tests: the task has already scored them.
    assert Prediction.objects.filter(student_id__in=ids).count() == len(ids)
    assert client.get(f"/api/v1/tasks/{task}").json()["id"] == task


def test_prediction_history_filters(scored: Any) -> None:
    admin = client_for(scored.users[Role.ADMINISTRATOR])
    admin.post(
        "/api/v1/predict/batch",
        {"students": [s.pk for s in scored.students], "as_of": scored.as_of},
        format="json",
    )
    school = scored.schools[1].pk
    body = admin.get("/api/v1/predictions", {"school": school, "ordering": "-probability"}).json()
    probabilities = [p["probability"] for p in body["results"]]
    assert body["count"] == 6 and probabilities == sorted(probabilities, reverse=True)


def test_metrics_report_performance_and_drift(scored: Any) -> None:
    ModelVersion.objects.update(metrics={"pr_auc": 0.4}, baseline_metrics={"rule": {"pr_auc": 0.2}})
    body = client_for(scored.users[Role.ANALYST]).get("/api/v1/metrics").json()
    assert body["performance"] == {"pr_auc": 0.4}
    assert body["baselines"] == {"rule": {"pr_auc": 0.2}}
    drift = body["drift"]
    assert drift["week_start"] == scored.week_start.isoformat() and drift["students"] == 12
    assert {f["feature"] for f in drift["features"]} >= {"attendance_rate"}
    attendance = next(f for f in drift["features"] if f["feature"] == "attendance_rate")
    # Training saw uniform [0, 1) values; this week every student has 0.9: a large shift.
    assert attendance["level"] == "large" and attendance["current_mean"] == pytest.approx(0.9)


def test_ready_loads_the_model(scored: Any) -> None:
    body = APIClient().get("/api/v1/ready").json()
    assert body["status"] == "ok" and body["checks"]["model"]["version"] == scored.version.name


def test_registry_and_runs_by_role(scored: Any) -> None:
    counselor = client_for(scored.users[Role.COUNSELOR])
    assert counselor.get("/api/v1/model-versions").json()["count"] == 1
    assert counselor.get("/api/v1/scoring-runs").status_code == 200
    # Training runs are for analysts and administrators.
    assert_error(counselor.get("/api/v1/training-runs"), 403, "permission_denied")
    assert client_for(scored.users[Role.ANALYST]).get("/api/v1/training-runs").status_code == 200
    # Data managers do not read the model registry.
    data_manager = client_for(scored.users[Role.DATA_MANAGER])
    assert_error(data_manager.get("/api/v1/metrics"), 403, "permission_denied")


def test_train_update_is_for_administrators(scored: Any) -> None:
    for role in (Role.COUNSELOR, Role.ANALYST, Role.DATA_MANAGER):
        response = client_for(scored.users[role]).post("/api/v1/train/update", {}, format="json")
        assert_error(response, 403, "permission_denied")
    assert not TrainingRun.objects.exists()


def test_train_update_starts_a_task(scored: Any, django_capture_on_commit_callbacks: Any) -> None:
    admin = client_for(scored.users[Role.ADMINISTRATOR])
    # Capture (do not run) the on-commit enqueue: the fine-tune itself is tested apart.
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = admin.post("/api/v1/train/update", {"epochs": 2}, format="json")
    assert response.status_code == 202, response.content
    run = TrainingRun.objects.get(pk=response.json()["training_run"])
    assert run.options["mode"] == "update" and run.options["base"] == scored.version.pk
    assert response.json()["task"] == run.options["task_id"] and len(callbacks) == 1
    assert_error(admin.post("/api/v1/train/update", {"epochs": 0}, format="json"), 400, "invalid")
    ModelVersion.objects.update(status=ModelStatus.RETIRED)
    assert_error(admin.post("/api/v1/train/update", {}, format="json"), 409, "no_active_model")


def test_psi_is_small_for_the_training_distribution_and_large_for_a_shift() -> None:
    rng = np.random.default_rng(0)
    same = rng.normal(5.0, 2.0, 20_000)
    assert psi_against_normal(same, 5.0, 2.0) == pytest.approx(0.0, abs=0.01)
    assert psi_against_normal(same + 2.0, 5.0, 2.0) > 0.25
    assert psi_against_normal(np.array([np.nan]), 5.0, 2.0) is None
    rows = feature_drift(
        columns=["a"], values=same[:, None] + 2.0, mean=np.array([5.0]), std=np.array([2.0])
    )
    assert rows[0]["level"] == "large" and rows[0]["mean_shift"] == pytest.approx(1.0, abs=0.05)


def test_train_update_without_new_labels_fails_cleanly(
    scored: Any, django_capture_on_commit_callbacks: Any
) -> None:
    from apps.predictions.services.training import TrainingDataError

    admin = client_for(scored.users[Role.ADMINISTRATOR])
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = admin.post("/api/v1/train/update", {"epochs": 1}, format="json")
    assert response.status_code == 202
    # The task (eager here): the model was trained on data up to 2020 and no labelled
    # weeks have closed since, so there is nothing to learn; the run records why.
    with pytest.raises(TrainingDataError):
        callbacks[0]()
    run = TrainingRun.objects.get()
    assert run.status == "failed" and "nothing to learn" in run.error
    assert ModelVersion.objects.count() == 1


def test_a_cached_prediction_costs_one_query(scored: Any, django_assert_num_queries: Any) -> None:
    client = client_for(scored.users[Role.COUNSELOR])
    mine, _ = _mine_and_other(scored)
    payload = {"student_id": mine.student_id, "as_of": scored.as_of}
    first = client.post("/api/v1/predict", payload, format="json")
    assert first.status_code == 200 and first["Content-Type"] == "application/json"
    # The scope check and the active model in one query; token, user, permissions,
    # scope and the rendered answer come from the cache.
    with django_assert_num_queries(1):
        again = client.post("/api/v1/predict", payload, format="json")
    assert again.json() == first.json()


def test_a_cached_answer_follows_the_students_data(scored: Any) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from apps.common.signals import student_data_changed

    client = client_for(scored.users[Role.COUNSELOR])
    mine, _ = _mine_and_other(scored)
    payload = {"student": mine.pk, "as_of": scored.as_of}
    first = client.post("/api/v1/predict", payload, format="json").json()
    Prediction.objects.filter(pk=first["id"]).update(probability=0.0)
    student_data_changed.send(sender=None, student_ids=[mine.pk], source="test")
    with CaptureQueriesContext(connection) as queries:
        again = client.post("/api/v1/predict", payload, format="json").json()
    assert len(queries.captured_queries) > 1  # recomputed, not the cached body
    assert again["id"] == first["id"] and again["probability"] == first["probability"]
    assert client.post("/api/v1/predict", payload, format="json").json() == again


@pytest.mark.redis
def test_the_cached_answer_lives_in_redis(scored: Any, redis_url: str, settings: Any) -> None:
    import redis

    from apps.predictions.services.scoring import prediction_cache_forget

    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": redis_url}
    }
    client = client_for(scored.users[Role.COUNSELOR])
    mine, _ = _mine_and_other(scored)
    payload = {"student": mine.pk, "as_of": scored.as_of}
    first = client.post("/api/v1/predict", payload, format="json").json()
    keys = redis.Redis.from_url(redis_url).keys("*prediction:v1:body:*")
    assert len(keys) == 1
    assert client.post("/api/v1/predict", payload, format="json").json() == first
    Prediction.objects.filter(pk=first["id"]).update(tier="low", probability=0.01)
    assert client.post("/api/v1/predict", payload, format="json").json() == first  # cached
    prediction_cache_forget(student_ids=[mine.pk])
    recomputed = client.post("/api/v1/predict", payload, format="json").json()
    assert recomputed["probability"] == first["probability"]  # scored again, row replaced


def test_cached_answers_survive_a_neighbours_cold_prediction(
    scored: Any, monkeypatch: pytest.MonkeyPatch, django_assert_num_queries: Any
) -> None:
    monkeypatch.setattr("apps.predictions.services.scoring.GENERATION_BUCKETS", 1)
    client = client_for(scored.users[Role.COUNSELOR])
    first, second = scored.students[:2]
    for student in (first, second):  # the second computed cold, in the same bucket
        client.post(
            "/api/v1/predict", {"student": student.pk, "as_of": scored.as_of}, format="json"
        )
    with django_assert_num_queries(1):
        client.post("/api/v1/predict", {"student": first.pk, "as_of": scored.as_of}, format="json")
