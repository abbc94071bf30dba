"""The model card in the admin, its translations, and the admin actions that call services."""

import datetime as dt

import numpy as np
import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from apps.accounts.models import Role, User
from apps.accounts.services import user_create
from apps.predictions.models import (
    ModelStatus,
    ModelVersion,
    ScoringRun,
    ScoringStatus,
    TrainingRun,
    TrainingStatus,
)
from apps.predictions.services import training_run_request, training_runs_fail_stale
from apps.predictions.services.scoring_runs import scoring_runs_fail_stale
from apps.predictions.services.training import json_safe
from tests.factories import RegionFactory
from tests.predictions.factories import ModelVersionFactory

pytestmark = pytest.mark.django_db

LONG_AGO = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


@pytest.fixture
def admin_user() -> User:
    return user_create(username="admin", password="pw-long-enough", role=Role.ADMINISTRATOR)


@pytest.fixture
def admin_client(client: Client, admin_user: User) -> Client:
    client.force_login(admin_user)
    return client


def realistic_version(**overrides: object) -> ModelVersion:
    """A row whose JSON is what ml.metrics and the training service really write."""
    from ml.metrics import choose_thresholds, evaluate

    rng = np.random.default_rng(0)
    labels = (rng.random(400) < 0.2).astype(float)
    probs = np.clip(0.15 + 0.5 * labels + rng.normal(0, 0.15, 400), 0, 1)
    region = RegionFactory(name="Ulipur")
    groups = {
        "gender": np.where(rng.random(400) < 0.5, "female", "male"),
        "region": np.full(400, str(region.pk)),
        "stipend": np.where(rng.random(400) < 0.4, "yes", "no"),
        "disability": np.where(rng.random(400) < 0.05, "yes", "no"),
    }
    thresholds = choose_thresholds(probs, labels, 0.8)
    metrics = evaluate(labels, probs, thresholds, groups)
    metrics["comparison"] = {
        "margins": {"gbt": {"roc_auc": 0.031, "pr_auc": 0.05}},
        "beats_all_baselines": True,
    }
    metrics["by_weeks_seen"] = [
        {"weeks_seen": 8, "n": 200, "positives": 40, "roc_auc": 0.8, "pr_auc": 0.5}
    ]
    fields = json_safe(
        {
            "metrics": metrics,
            "baseline_metrics": {
                "indicator": {
                    "roc_auc": 0.62,
                    "pr_auc": 0.2,
                    "brier": 0.22,
                    "at_risk": {"recall": 0.5, "precision": 0.3, "flagged_fraction": 0.2},
                },
                "logistic": {"roc_auc": 0.83, "pr_auc": 0.42, "brier": 0.05},
                "gbt": {"roc_auc": 0.82, "pr_auc": 0.40, "brier": 0.06},
            },
            "subgroup_metrics": metrics["subgroups"],
            "calibration": metrics["reliability"],
            "thresholds": thresholds.to_dict(),
            "history": [
                {
                    "epoch": 0,
                    "train_loss": 0.9,
                    "val_pr_auc": 0.4,
                    "val_roc_auc": 0.8,
                    "seconds": 3.0,
                }
            ],
            "dataset": {
                "samples": {"train": 300, "val": 50, "test": 400},
                "students": {"train": 100, "val": 20, "test": 80},
                "positives": {"train": 60, "val": 10, "test": int(labels.sum())},
                "academic_years": [2025],
            },
            "timings": {"total_s": 61.5, "training_s": 40.2},
            "label_spec": {"horizon_days": 0},
        }
    )
    fields.update(overrides)
    return ModelVersionFactory(**fields)


def test_the_model_card_shows_baselines_calibration_subgroups_and_tiers(
    admin_client: Client,
) -> None:
    version = realistic_version()
    response = admin_client.get(reverse("admin:predictions_modelversion_change", args=[version.pk]))
    assert response.status_code == 200
    page = response.content.decode()
    for text in (
        "Model card",
        "Indicator rule (attendance, behaviour, course failure)",
        "Logistic regression",
        "Gradient-boosted trees",
        "+0.031",
        "The model beats every baseline on the held-out students.",
        "Calibration",
        "Observed dropout rate",
        "Ulipur",  # the region's name, not its key
        "Receives a stipend",
        "False-negative rate",
        "High risk",
        "Watch",
    ):
        assert text in page, text
    card = response.context["card"]
    assert [row["name"] for row in card["comparison_rows"]][0] == "EduPulse model"
    assert {table["title"] for table in card["subgroup_tables"]} == {
        "Gender",
        "Region",
        "Receives a stipend",
        "Has a disability",
    }
    assert card["tiers"][0]["threshold"] == pytest.approx(version.thresholds["high"])
    assert sum(row["count"] for row in card["calibration"]) == 400


def test_the_model_card_speaks_bengali(admin_client: Client) -> None:
    version = realistic_version()
    admin_client.cookies[settings.LANGUAGE_COOKIE_NAME] = "bn"
    response = admin_client.get(reverse("admin:predictions_modelversion_change", args=[version.pk]))
    page = response.content.decode()
    assert 'lang="bn"' in page
    assert "Model card" not in page and "Logistic regression" not in page
    assert "মডেল কার্ড" in page


def test_the_list_shows_held_out_results(admin_client: Client) -> None:
    realistic_version()
    response = admin_client.get(reverse("admin:predictions_modelversion_changelist"))
    assert response.status_code == 200
    assert "Held-out ROC-AUC" in response.content.decode()


def test_the_promote_action_calls_the_service(admin_client: Client) -> None:
    old = ModelVersionFactory(status=ModelStatus.ACTIVE, metrics={"pr_auc": 0.4})
    new = ModelVersionFactory(metrics={"pr_auc": 0.5})
    response = admin_client.post(
        reverse("admin:predictions_modelversion_changelist"),
        {"action": "promote_selected", "_selected_action": [new.pk]},
        follow=True,
    )
    assert response.status_code == 200
    new.refresh_from_db()
    old.refresh_from_db()
    assert (new.status, old.status) == (ModelStatus.ACTIVE, ModelStatus.RETIRED)


def test_the_promote_action_reports_a_refusal(admin_client: Client) -> None:
    ModelVersionFactory(status=ModelStatus.ACTIVE, metrics={"pr_auc": 0.6})
    worse = ModelVersionFactory(metrics={"pr_auc": 0.5})
    response = admin_client.post(
        reverse("admin:predictions_modelversion_changelist"),
        {"action": "promote_selected", "_selected_action": [worse.pk]},
        follow=True,
    )
    assert "an administrator can force the promotion" in response.content.decode()
    worse.refresh_from_db()
    assert worse.status == ModelStatus.CANDIDATE


def test_the_active_model_cannot_be_deleted(admin_client: Client) -> None:
    active = ModelVersionFactory(status=ModelStatus.ACTIVE)
    response = admin_client.get(reverse("admin:predictions_modelversion_delete", args=[active.pk]))
    assert response.status_code == 403


def test_an_administrator_requests_training_from_the_admin(
    admin_client: Client,
    admin_user: User,
    django_capture_on_commit_callbacks,  # type: ignore[no-untyped-def]
) -> None:
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = admin_client.post(
            reverse("admin:predictions_trainingrun_add"),
            {"data_from": "", "data_to": "", "epochs": "5", "promote": "on"},
        )
    assert response.status_code == 302
    run = TrainingRun.objects.get()
    assert run.requested_by == admin_user and run.options == {"epochs": 5} and run.promote
    assert len(callbacks) == 1  # the task is enqueued once the request commits
    page = admin_client.get(reverse("admin:predictions_trainingrun_change", args=[run.pk]))
    assert page.status_code == 200


def test_a_run_whose_worker_was_lost_says_so_in_the_readers_language(
    admin_client: Client,
) -> None:
    run = training_run_request(requested_by=None, enqueue=False)
    TrainingRun.objects.filter(pk=run.pk).update(status=TrainingStatus.RUNNING, updated_at=LONG_AGO)
    assert training_runs_fail_stale() == [run.pk]
    scoring = ScoringRun.objects.create(
        model_version=ModelVersionFactory(),
        as_of=dt.date(2026, 3, 1),
        week_start=dt.date(2026, 2, 28),
        status=ScoringStatus.RUNNING,
    )
    ScoringRun.objects.filter(pk=scoring.pk).update(updated_at=LONG_AGO)
    assert scoring_runs_fail_stale() == [scoring.pk]
    admin_client.cookies[settings.LANGUAGE_COOKIE_NAME] = "bn"

    for url in (
        reverse("admin:predictions_trainingrun_change", args=[run.pk]),
        reverse("admin:predictions_scoringrun_change", args=[scoring.pk]),
    ):
        page = admin_client.get(url).content.decode()
        assert "ওয়ার্কার এটি চালাচ্ছিল" in page, url
        assert "worker_lost" not in page and "Run it again" not in page, url


def test_analysts_may_view_models_but_not_promote() -> None:
    analyst = user_create(username="a", password="pw-long-enough", role=Role.ANALYST)
    counselor = user_create(username="c", password="pw-long-enough", role=Role.COUNSELOR)
    assert analyst.has_perm("predictions.view_modelversion")
    assert analyst.has_perm("predictions.view_trainingrun")
    assert counselor.has_perm("predictions.view_modelversion")
    for user in (analyst, counselor):
        assert not user.has_perm("predictions.promote_modelversion")
        assert not user.has_perm("predictions.add_trainingrun")


def test_a_backwards_date_range_is_refused_by_the_form(admin_client: Client) -> None:
    response = admin_client.post(
        reverse("admin:predictions_trainingrun_add"),
        {"data_from": "2026-05-01", "data_to": "2026-01-01", "epochs": "5"},
    )
    assert response.status_code == 200
    assert "The end of the date range is before its start." in response.content.decode()
    assert not TrainingRun.objects.exists()


def test_the_version_list_costs_the_same_queries_for_many_rows(
    admin_client: Client,
    admin_user: User,
    django_assert_max_num_queries,  # type: ignore[no-untyped-def]
) -> None:
    url = reverse("admin:predictions_modelversion_changelist")
    ModelVersionFactory(trained_by=admin_user)
    admin_client.get(url)
    with django_assert_max_num_queries(12) as first:
        admin_client.get(url)
    for _ in range(8):
        ModelVersionFactory(trained_by=admin_user)
    with django_assert_max_num_queries(len(first.captured_queries)):
        response = admin_client.get(url)
    assert len(response.context["cl"].result_list) == 9
