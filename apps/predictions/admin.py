from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from apps.predictions.models import (
    ModelStatus,
    ModelVersion,
    Notification,
    Prediction,
    ScoringRun,
    TrainingRun,
)
from apps.predictions.selectors import model_card, model_versions_list, training_runs_list
from apps.predictions.services import (
    PromotionRefused,
    model_version_promote,
    run_error_text,
    training_run_request,
)


def _fmt(value: Any) -> str:
    return "—" if value is None else f"{float(value):.3f}"


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    change_form_template = "admin/predictions/modelversion/change_form.html"
    list_display = (
        "name",
        "status",
        "feature_version",
        "held_out_roc_auc",
        "held_out_pr_auc",
        "beats_baselines",
        "trained_by",
        "training_finished_at",
    )
    list_filter = ("status", "feature_version")
    search_fields = ("name",)
    list_select_related = ("trained_by",)
    actions = ["promote_selected", "force_promote_selected"]
    fields = (
        "name",
        "status",
        "feature_version",
        "file_path",
        "data_from",
        "data_to",
        "trained_by",
        "training_started_at",
        "training_finished_at",
        "promoted_by",
        "promoted_at",
        "retired_at",
        "mlflow_run_id",
        "tracking_error",
    )
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[ModelVersion]:
        return model_versions_list()

    @admin.display(description=_("held-out ROC-AUC"))
    def held_out_roc_auc(self, obj: ModelVersion) -> str:
        return _fmt(obj.metrics.get("roc_auc"))

    @admin.display(description=_("held-out PR-AUC"))
    def held_out_pr_auc(self, obj: ModelVersion) -> str:
        return _fmt(obj.metrics.get("pr_auc"))

    @admin.display(description=_("beats the baselines"), boolean=True)
    def beats_baselines(self, obj: ModelVersion) -> bool | None:
        value = (obj.metrics.get("comparison") or {}).get("beats_all_baselines")
        return None if value is None else bool(value)

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Versions come only from training runs, never typed in.
        return False

    def has_change_permission(self, request: HttpRequest, obj: ModelVersion | None = None) -> bool:
        # A version is a record of a training run; it changes only through the
        # promotion service (the actions), so its page is a read-only model card.
        return False

    def has_delete_permission(self, request: HttpRequest, obj: ModelVersion | None = None) -> bool:
        if obj is not None and obj.status == ModelStatus.ACTIVE:
            return False
        return super().has_delete_permission(request, obj)

    def has_promote_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("predictions.promote_modelversion")

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        version = self.get_object(request, object_id)
        context = dict(extra_context or {})
        if version is not None:
            context["card"] = model_card(version)
        return super().change_view(request, object_id, form_url, extra_context=context)

    def _promote(self, request: HttpRequest, queryset: QuerySet[ModelVersion], force: bool) -> None:
        if queryset.count() != 1:
            self.message_user(request, gettext("Choose exactly one model."), messages.ERROR)
            return
        version = queryset.get()
        try:
            model_version_promote(model_version=version, user=request.user, force=force)  # type: ignore[arg-type]
        except (PromotionRefused, PermissionDenied) as error:
            self.message_user(request, str(error), messages.ERROR)
            return
        self.message_user(
            request,
            gettext("%(name)s is now the active model.") % {"name": version.name},
            messages.SUCCESS,
        )

    @admin.action(description=_("Promote the selected model"), permissions=["promote"])
    def promote_selected(self, request: HttpRequest, queryset: QuerySet[ModelVersion]) -> None:
        self._promote(request, queryset, force=False)

    @admin.action(
        description=_("Promote the selected model even if it is worse (administrators)"),
        permissions=["promote"],
    )
    def force_promote_selected(
        self, request: HttpRequest, queryset: QuerySet[ModelVersion]
    ) -> None:
        self._promote(request, queryset, force=True)


class TrainingRunForm(forms.ModelForm):
    epochs = forms.IntegerField(label=_("epochs"), min_value=1, max_value=200, initial=8)

    class Meta:
        model = TrainingRun
        fields = ("data_from", "data_to", "promote")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        start, end = cleaned.get("data_from"), cleaned.get("data_to")
        if start and end and end < start:
            raise ValidationError(gettext("The end of the date range is before its start."))
        return cleaned


@admin.register(TrainingRun)
class TrainingRunAdmin(admin.ModelAdmin):
    form = TrainingRunForm
    list_display = (
        "__str__",
        "status",
        "requested_by",
        "created_at",
        "started_at",
        "finished_at",
        "model_version",
        "stage",
    )
    list_filter = ("status",)
    list_select_related = ("requested_by", "model_version")
    readonly_fields = (
        "status",
        "requested_by",
        "options",
        "progress",
        "error_text",
        "started_at",
        "finished_at",
        "model_version",
        "created_at",
        "updated_at",
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[TrainingRun]:
        return training_runs_list()

    def get_fields(self, request: HttpRequest, obj: TrainingRun | None = None) -> Any:
        if obj is None:
            return ["data_from", "data_to", "epochs", "promote"]
        return ["data_from", "data_to", "promote", *self.readonly_fields]

    def has_change_permission(self, request: HttpRequest, obj: TrainingRun | None = None) -> bool:
        # A run is a record of what happened: nothing changes after the request.
        return False

    @admin.display(description=_("error"))
    def error_text(self, obj: TrainingRun) -> str:
        return run_error_text(obj.error)

    @admin.display(description=_("stage"))
    def stage(self, obj: TrainingRun) -> str:
        progress = obj.progress or {}
        if progress.get("stage") == "training":
            return gettext("epoch %(epoch)s of %(epochs)s") % {
                "epoch": progress.get("epoch", 0) + 1,
                "epochs": progress.get("epochs", "?"),
            }
        return str(progress.get("stage", ""))

    def save_model(self, request: HttpRequest, obj: TrainingRun, form: Any, change: bool) -> None:
        if change:
            return
        run = training_run_request(
            requested_by=request.user,  # type: ignore[arg-type]
            data_from=form.cleaned_data.get("data_from"),
            data_to=form.cleaned_data.get("data_to"),
            options={"epochs": form.cleaned_data["epochs"]},
            promote=form.cleaned_data.get("promote", False),
        )
        # The admin logs and redirects to the object it saved: point it at the new run.
        obj.pk = run.pk
        obj.created_at = run.created_at


# --------------------------------------------------------------------------- scoring


class _ReadOnly(admin.ModelAdmin):
    """Scores and runs are records of what the model said: nothing is edited by hand."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Prediction)
class PredictionAdmin(_ReadOnly):
    list_display = ("student", "week_start", "probability", "tier", "model_version", "school")
    list_filter = ("tier", "week_start", "model_version")
    search_fields = ("student__student_id",)
    raw_id_fields = ("student", "school")
    readonly_fields = ("reasons",)

    @admin.display(description=_("reasons"))
    def reasons(self, obj: Prediction) -> str:
        from apps.predictions.sentences import factor_sentences

        return " ".join(factor_sentences(obj.factors or []))


@admin.register(ScoringRun)
class ScoringRunAdmin(_ReadOnly):
    list_display = (
        "pk",
        "week_start",
        "status",
        "model_version",
        "students",
        "predictions",
        "alerts",
        "duration_s",
        "trigger",
        "created_at",
    )
    list_filter = ("status", "trigger")
    exclude = ("failures",)
    readonly_fields = ("failures_text",)

    @admin.display(description=_("failures"))
    def failures_text(self, obj: ScoringRun) -> str:
        parts = []
        for failure in obj.failures or []:
            text = run_error_text(failure.get("error", ""))
            school = failure.get("school")
            parts.append(text if school is None else f"{school}: {text}")
        return "; ".join(parts)


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ("recipient", "student", "kind", "week_start", "emailed", "read_at")
    list_filter = ("kind", "emailed", "week_start")
    raw_id_fields = ("recipient", "student", "prediction")
