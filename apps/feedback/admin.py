from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from apps.feedback.models import AuditEvent, Intervention, OutcomeRecord, TrainingFeedback

AUDIT_FIELDS = ("created_at", "updated_at")


@admin.register(Intervention)
class InterventionAdmin(admin.ModelAdmin):
    list_display = (
        "student",
        "intervention_type",
        "support_tier",
        "status",
        "owner",
        "start_date",
        "review_date",
    )
    list_filter = ("intervention_type", "status", "support_tier")
    search_fields = ("student__student_id", "goal")
    list_select_related = ("student", "owner")
    raw_id_fields = ("student", "owner", "created_by")
    date_hierarchy = "start_date"
    readonly_fields = AUDIT_FIELDS


@admin.register(OutcomeRecord)
class OutcomeRecordAdmin(admin.ModelAdmin):
    list_display = ("student", "outcome", "observed_on", "recorded_by")
    list_filter = ("outcome",)
    search_fields = ("student__student_id",)
    list_select_related = ("student", "recorded_by")
    raw_id_fields = ("student", "intervention", "recorded_by")
    readonly_fields = AUDIT_FIELDS


@admin.register(TrainingFeedback)
class TrainingFeedbackAdmin(admin.ModelAdmin):
    list_display = ("student", "prediction_id", "verdict", "given_by", "created_at")
    list_filter = ("verdict",)
    search_fields = ("student__student_id",)
    list_select_related = ("student", "given_by")
    raw_id_fields = ("student", "given_by")
    readonly_fields = AUDIT_FIELDS


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    # The trail is written by services only; the admin reads it.
    list_display = ("created_at", "username", "action", "student")
    list_filter = ("action",)
    search_fields = ("username", "student__student_id")
    list_select_related = ("student",)
    date_hierarchy = "created_at"
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
