from pathlib import Path

import numpy as np
import pytest
from django.contrib.auth.models import Permission
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction

from apps.accounts.models import Role, User
from apps.accounts.services import user_create
from apps.predictions.models import ModelStatus, ModelVersion
from apps.predictions.services import (
    PromotionRefused,
    TrainingOptions,
    model_version_promote,
    model_version_train,
)
from tests.predictions.conftest import ArraySource, tiny_options
from tests.predictions.factories import ModelVersionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin() -> User:
    return user_create(username="admin", password="pw-long-enough", role=Role.ADMINISTRATOR)


@pytest.fixture
def promoter() -> User:
    """Allowed to promote, but not an administrator: may not force."""
    user = user_create(username="ml-lead", password="pw-long-enough", role=Role.ANALYST)
    user.user_permissions.add(Permission.objects.get(codename="promote_modelversion"))
    return User.objects.get(pk=user.pk)  # a fresh object: permissions are cached


def test_the_first_model_is_promoted_without_comparison(admin: User) -> None:
    version = ModelVersionFactory()
    model_version_promote(model_version=version, user=admin)
    version.refresh_from_db()
    assert version.status == ModelStatus.ACTIVE
    assert version.promoted_by == admin and version.promoted_at is not None
    assert version.promotion_report["compared_with"] is None


def test_promotion_retires_the_active_model_in_the_same_transaction(admin: User) -> None:
    old = ModelVersionFactory(status=ModelStatus.ACTIVE, metrics={"pr_auc": 0.5})
    new = ModelVersionFactory(metrics={"pr_auc": 0.6})
    model_version_promote(model_version=new, user=admin)
    old.refresh_from_db()
    new.refresh_from_db()
    assert (old.status, new.status) == (ModelStatus.RETIRED, ModelStatus.ACTIVE)
    assert old.retired_at == new.promoted_at
    assert new.promotion_report["compared_with"] == old.pk
    assert new.promotion_report["method"] == "stored_metrics"  # neither has a held-out file
    assert ModelVersion.objects.filter(status=ModelStatus.ACTIVE).count() == 1


def test_a_worse_candidate_is_refused_and_nothing_changes(promoter: User) -> None:
    old = ModelVersionFactory(status=ModelStatus.ACTIVE, metrics={"pr_auc": 0.6})
    worse = ModelVersionFactory(metrics={"pr_auc": 0.5})
    with pytest.raises(PromotionRefused) as refusal:
        model_version_promote(model_version=worse, user=promoter)
    assert refusal.value.report["worse"] is True
    assert "0.500" in str(refusal.value) and "0.600" in str(refusal.value)
    old.refresh_from_db()
    worse.refresh_from_db()
    assert (old.status, worse.status) == (ModelStatus.ACTIVE, ModelStatus.CANDIDATE)


def test_a_candidate_within_the_tolerance_is_not_worse(promoter: User) -> None:
    ModelVersionFactory(status=ModelStatus.ACTIVE, metrics={"pr_auc": 0.6})
    close = ModelVersionFactory(metrics={"pr_auc": 0.599})
    assert model_version_promote(model_version=close, user=promoter).status == ModelStatus.ACTIVE


def test_an_administrator_can_force_a_worse_candidate(admin: User) -> None:
    old = ModelVersionFactory(status=ModelStatus.ACTIVE, metrics={"pr_auc": 0.6})
    worse = ModelVersionFactory(metrics={"pr_auc": 0.5})
    model_version_promote(model_version=worse, user=admin, force=True)
    worse.refresh_from_db()
    old.refresh_from_db()
    assert worse.status == ModelStatus.ACTIVE and old.status == ModelStatus.RETIRED
    assert worse.promotion_report["forced"] is True


def test_only_an_administrator_may_force(promoter: User) -> None:
    ModelVersionFactory(status=ModelStatus.ACTIVE, metrics={"pr_auc": 0.6})
    worse = ModelVersionFactory(metrics={"pr_auc": 0.5})
    with pytest.raises(PermissionDenied):
        model_version_promote(model_version=worse, user=promoter, force=True)
    with pytest.raises(PermissionDenied):
        model_version_promote(model_version=worse, user=None, force=True)
    worse.refresh_from_db()
    assert worse.status == ModelStatus.CANDIDATE


@pytest.mark.parametrize("role", [Role.COUNSELOR, Role.ANALYST, Role.DATA_MANAGER])
def test_other_roles_cannot_promote(role: Role) -> None:
    user = user_create(username="u", password="pw-long-enough", role=role)
    with pytest.raises(PermissionDenied):
        model_version_promote(model_version=ModelVersionFactory(), user=user)


def test_a_command_line_operator_promotes_a_model_that_is_not_worse() -> None:
    version = ModelVersionFactory()
    assert model_version_promote(model_version=version, user=None).status == ModelStatus.ACTIVE


def test_the_active_model_cannot_be_promoted_again(admin: User) -> None:
    active = ModelVersionFactory(status=ModelStatus.ACTIVE)
    with pytest.raises(PromotionRefused):
        model_version_promote(model_version=active, user=admin)


def test_a_retired_model_can_be_brought_back(admin: User) -> None:
    retired = ModelVersionFactory(status=ModelStatus.RETIRED, metrics={"pr_auc": 0.7})
    ModelVersionFactory(status=ModelStatus.ACTIVE, metrics={"pr_auc": 0.6})
    model_version_promote(model_version=retired, user=admin)
    retired.refresh_from_db()
    assert retired.status == ModelStatus.ACTIVE and retired.retired_at is None


def test_the_database_refuses_two_active_models() -> None:
    ModelVersionFactory(status=ModelStatus.ACTIVE)
    with pytest.raises(IntegrityError), transaction.atomic():
        ModelVersionFactory(status=ModelStatus.ACTIVE)


def test_models_are_compared_on_the_same_held_out_students(
    district: ArraySource, model_dir: Path, admin: User
) -> None:
    from apps.predictions.datasets import load_samples, to_arrays
    from ml.checkpoint import load_checkpoint
    from ml.inference import Scorer
    from ml.metrics import pr_auc

    first = model_version_train(
        options=TrainingOptions.from_dict(tiny_options(epochs=1)), source=district
    )
    model_version_promote(model_version=first, user=admin)
    second = model_version_train(
        options=TrainingOptions.from_dict(tiny_options(epochs=3, seed=1)), source=district
    )
    # Whatever the verdict, the numbers must be the active model re-scored on the
    # candidate's held-out file, not the active model's own stored result.
    held_out = load_samples(second.holdout_file)  # type: ignore[arg-type]
    vocabulary = [first.feature_spec["categories"][c] for c in ("gender", "region", "school_type")]
    probs = Scorer(load_checkpoint(first.path), device="cpu").score(to_arrays(held_out, vocabulary))
    expected_active = pr_auc(np.asarray(held_out.labels), probs)
    try:
        model_version_promote(model_version=second, user=admin)
        report = ModelVersion.objects.get(pk=second.pk).promotion_report
    except PromotionRefused as refusal:
        report = refusal.report
    assert report["method"] == "same_holdout"
    assert report["active"] == pytest.approx(expected_active)
    assert report["candidate"] == pytest.approx(second.metrics["pr_auc"])
