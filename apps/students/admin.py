from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from apps.accounts.admin import UserAdmin
from apps.accounts.models import User
from apps.students.models import (
    AttendanceRecord,
    DataQualityFlag,
    DisciplineIncident,
    Enrollment,
    GradeRecord,
    Holiday,
    Region,
    School,
    StaffScope,
    Student,
    Subject,
)

AUDIT_FIELDS = ("created_at", "updated_at")


class BigTableAdmin(admin.ModelAdmin):
    # Counting millions of rows on every page load is the slow part of the
    # admin on attendance-sized tables.
    show_full_result_count = False
    list_per_page = 50


@admin.register(Region)
class RegionAdmin(admin.ModelAdmin):
    list_display = ("name", "name_bn", "level", "code", "parent")
    list_filter = ("level",)
    search_fields = ("name", "name_bn", "code")
    list_select_related = ("parent",)
    autocomplete_fields = ("parent",)
    readonly_fields = ("path", *AUDIT_FIELDS)


@admin.register(School)
class SchoolAdmin(admin.ModelAdmin):
    list_display = ("eiin", "name", "name_bn", "school_type", "region", "is_active")
    list_filter = ("school_type", "is_active")
    search_fields = ("eiin", "name", "name_bn")
    list_select_related = ("region",)
    autocomplete_fields = ("region",)
    readonly_fields = AUDIT_FIELDS


class EnrollmentInline(admin.TabularInline):
    model = Enrollment
    extra = 0
    fields = (
        "school",
        "academic_year",
        "grade_level",
        "section",
        "entry_date",
        "exit_date",
        "exit_reason",
    )
    autocomplete_fields = ("school",)


@admin.register(Student)
class StudentAdmin(BigTableAdmin):
    list_display = ("student_id", "name", "name_bn", "gender", "stipend_recipient")
    list_filter = ("gender", "stipend_recipient", "has_disability")
    search_fields = ("=student_id", "name", "name_bn")
    readonly_fields = AUDIT_FIELDS
    inlines = [EnrollmentInline]


@admin.register(Enrollment)
class EnrollmentAdmin(BigTableAdmin):
    list_display = (
        "student",
        "school",
        "academic_year",
        "grade_level",
        "section",
        "entry_date",
        "exit_date",
        "exit_reason",
    )
    list_filter = ("academic_year", "grade_level", "exit_reason")
    search_fields = ("=student__student_id", "=school__eiin")
    list_select_related = ("student", "school")
    autocomplete_fields = ("student", "school")
    readonly_fields = AUDIT_FIELDS


@admin.register(Subject)
class SubjectAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "name_bn", "is_core")
    list_filter = ("is_core",)
    search_fields = ("code", "name", "name_bn")
    readonly_fields = AUDIT_FIELDS


@admin.register(Holiday)
class HolidayAdmin(admin.ModelAdmin):
    list_display = ("date", "name", "name_bn", "region")
    list_filter = ("date",)
    search_fields = ("name", "name_bn")
    list_select_related = ("region",)
    autocomplete_fields = ("region",)
    readonly_fields = AUDIT_FIELDS


@admin.register(AttendanceRecord)
class AttendanceRecordAdmin(BigTableAdmin):
    list_display = ("student", "school", "date", "status")
    list_filter = ("status",)
    search_fields = ("=student__student_id", "=school__eiin")
    list_select_related = ("student", "school")
    raw_id_fields = ("student", "school")
    date_hierarchy = "date"


@admin.register(GradeRecord)
class GradeRecordAdmin(BigTableAdmin):
    list_display = (
        "student",
        "subject",
        "academic_year",
        "term",
        "assessment",
        "score",
        "max_score",
        "is_missing",
    )
    list_filter = ("academic_year", "term", "is_missing", "subject")
    search_fields = ("=student__student_id",)
    list_select_related = ("student", "subject")
    raw_id_fields = ("student",)
    readonly_fields = AUDIT_FIELDS


@admin.register(DisciplineIncident)
class DisciplineIncidentAdmin(BigTableAdmin):
    list_display = ("student", "school", "date", "category", "severity", "days_suspended")
    list_filter = ("category", "severity")
    search_fields = ("=student__student_id", "=school__eiin")
    list_select_related = ("student", "school")
    raw_id_fields = ("student", "school")
    readonly_fields = AUDIT_FIELDS


class StaffScopeInline(admin.TabularInline):
    model = StaffScope
    extra = 0
    autocomplete_fields = ("school", "region")
    verbose_name = _("school or region this user may see")
    verbose_name_plural = _("schools or regions this user may see")


# Scope lives with the schools it points at, so the user page gets it from here
# rather than accounts importing students.
admin.site.unregister(User)


@admin.register(User)
class UserWithScopeAdmin(UserAdmin):
    inlines = [StaffScopeInline]


@admin.register(DataQualityFlag)
class DataQualityFlagAdmin(BigTableAdmin):
    list_display = ("check_code", "school", "week_start", "value", "source", "resolved")
    list_filter = ("check_code", "resolved", "source")
    search_fields = ("school__eiin", "school__name", "source")
    list_select_related = ("school",)
    date_hierarchy = "week_start"
    readonly_fields = (
        "school",
        "check_code",
        "week_start",
        "source",
        "value",
        "detail",
        *AUDIT_FIELDS,
    )
