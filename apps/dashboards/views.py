import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST
from django.views.i18n import set_language
from django_otp import login as otp_login
from django_otp import user_has_device
from django_otp.decorators import otp_required

from apps.accounts.models import User
from apps.dashboards.exports import FORMATS, export_response
from apps.dashboards.forms import (
    CaseloadFilterForm,
    FeedbackForm,
    InterventionForm,
    OutcomeForm,
    VerifyForm,
)
from apps.dashboards.risk import RiskTier, StudentRisk, risk_source
from apps.dashboards.selectors import (
    CaseloadExportRow,
    caseload_options,
    caseload_page,
    caseload_rows,
    new_high_risk_since,
    school_for_user,
    school_overview,
    student_enrollments,
    student_for_user,
    student_incidents,
    student_marks,
    student_weekly_attendance,
    week_start_of,
)
from apps.dashboards.services import (
    caseload_visit_record,
    overview_ensure,
    preferred_language_set,
)
from apps.feedback.models import AuditAction, Intervention
from apps.feedback.selectors import (
    feedback_of_student,
    interventions_of_student,
    interventions_visible_to,
    outcomes_of_student,
)
from apps.feedback.services import (
    audit_record,
    feedback_record,
    intervention_create,
    intervention_update,
    outcome_record,
)
from apps.students.models import Enrollment, Student
from apps.students.services import academic_year_of

ViewFunc = Callable[..., HttpResponseBase]

# A new plan's default review date: two school weeks on.
REVIEW_AFTER = dt.timedelta(days=14)


def staff_page(view: ViewFunc) -> ViewFunc:
    """Signed in, and past the one-time-password step when the user has a device."""
    verified = otp_required(view, login_url="dashboards:verify", if_configured=True)
    return login_required(verified)


def _user(request: HttpRequest) -> User:
    assert isinstance(request.user, User)
    return request.user


def _require(request: HttpRequest, permission: str) -> None:
    if not request.user.has_perm(permission):
        raise PermissionDenied


# --- Sign-in and language ----------------------------------------------------------


class SignInView(auth_views.LoginView):
    template_name = "dashboards/signin.html"
    redirect_authenticated_user = True

    def form_valid(self, form: Any) -> HttpResponse:
        response = super().form_valid(form)
        user = form.get_user()
        if user_has_device(user):
            target = reverse("dashboards:verify")
            next_url = self.get_redirect_url()
            if next_url:
                target += "?" + urlencode({"next": next_url})
            response = redirect(target)
        # Sign-in brings back the language the person chose last time, on any device.
        if user.preferred_language:
            response.set_cookie(
                settings.LANGUAGE_COOKIE_NAME,
                user.preferred_language,
                max_age=settings.LANGUAGE_COOKIE_AGE,
                samesite=settings.LANGUAGE_COOKIE_SAMESITE,
            )
        return response


@login_required
def verify_view(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    next_url = request.POST.get("next") or request.GET.get("next") or ""
    if not url_has_allowed_host_and_scheme(next_url, {request.get_host()}):
        next_url = ""
    form = VerifyForm(user, request, data=request.POST or None)
    if request.method == "POST" and form.is_valid():
        otp_login(request, user.otp_device)  # type: ignore[attr-defined]
        return redirect(next_url or settings.LOGIN_REDIRECT_URL)
    return render(request, "dashboards/verify.html", {"form": form, "next": next_url})


@require_POST
def language_view(request: HttpRequest) -> HttpResponseBase:
    language = request.POST.get("language", "")
    if request.user.is_authenticated and language in dict(settings.LANGUAGES):
        preferred_language_set(user=_user(request), language=language)
    return set_language(request)


@require_GET
def home_view(request: HttpRequest) -> HttpResponse:
    return redirect("dashboards:caseload")


# --- Caseload -------------------------------------------------------------------


@dataclass
class CaseloadRow:
    enrollment: Enrollment
    risk: StudentRisk | None


@dataclass
class Column:
    key: str
    label: str
    sort_param: str  # the sort this header's link applies
    aria_sort: str  # "ascending", "descending" or "none"


def _columns(sort: str, show_risk: bool) -> list[Column]:
    labels = [
        ("name", _("Name")),
        ("id", _("Identifier")),
        ("school", _("School")),
        ("grade", _("Grade and section")),
        ("attendance", _("Attendance this month")),
        ("open", _("Open interventions")),
        ("overdue", _("Overdue reviews")),
    ]
    if show_risk:
        labels.insert(0, ("risk", _("Risk")))
    columns = []
    for key, label in labels:
        state = "none"
        next_sort = key
        if sort == key:
            state, next_sort = "ascending", f"-{key}"
        elif sort == f"-{key}":
            state = "descending"
        columns.append(Column(key=key, label=label, sort_param=next_sort, aria_sort=state))
    return columns


def _caseload_since(request: HttpRequest) -> dt.datetime | None:
    # The first caseload of a session moves the "last visit" mark; the rest of
    # the session keeps comparing with the visit before it.
    if "caseload_since" not in request.session:
        previous = caseload_visit_record(user=_user(request))
        request.session["caseload_since"] = previous.isoformat() if previous else ""
    stored = request.session["caseload_since"]
    return dt.datetime.fromisoformat(stored) if stored else None


def _caseload_filters(request: HttpRequest, today: dt.date) -> tuple[CaseloadFilterForm, Any]:
    options = caseload_options(_user(request), today=today)
    form = CaseloadFilterForm(request.GET or None, options=options)
    return form, form.filters()


@staff_page
@require_GET
def caseload_view(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    today = timezone.localdate()
    form, filters = _caseload_filters(request, today)
    page = caseload_page(user, filters, today=today, number=request.GET.get("page"))
    source = risk_source()
    risks = source.for_students([row.student_id for row in page])
    rows = [CaseloadRow(enrollment=e, risk=risks.get(e.student_id)) for e in page]
    since = _caseload_since(request)
    context = {
        "form": form,
        "filters": filters,
        "page": page,
        "rows": rows,
        "columns": _columns(filters.effective_sort(), source.available),
        "risk_available": source.available,
        "new_high_risk": new_high_risk_since(user, since) if source.available else None,
        "since": since,
        "today": today,
        "nav": "caseload",
    }
    return render(request, "dashboards/caseload.html", context)


def _caseload_export_rows(
    rows: list[CaseloadExportRow], risks: dict[int, StudentRisk] | None
) -> list[list[Any]]:
    """The export's lines; `risks` is None when there are no scores to show."""
    # Translated once, not once per row: thousands of rows, three labels.
    tier_labels = {value: str(label) for value, label in RiskTier.choices}
    out = []
    for row in rows:
        line: list[Any] = []
        if risks is not None:
            risk = risks.get(row.student_id)
            line += [
                tier_labels.get(risk.tier, risk.tier) if risk else "",
                round(risk.probability, 3) if risk else "",
                round(risk.change_since_last_week, 3)
                if risk and risk.change_since_last_week is not None
                else "",
                risk.top_reason if risk else "",
            ]
        line += [
            row.name,
            row.name_bn,
            row.identifier,
            row.school,
            row.grade_level,
            row.section,
            round(row.attendance_month, 3) if row.attendance_month is not None else "",
            row.open_interventions,
            row.overdue_reviews,
        ]
        out.append(line)
    return out


@staff_page
@require_GET
def caseload_export_view(request: HttpRequest, fmt: str) -> HttpResponse:
    if fmt not in FORMATS:
        raise Http404
    user = _user(request)
    today = timezone.localdate()
    _form, filters = _caseload_filters(request, today)
    rows = caseload_rows(user, filters, today=today)
    source = risk_source()
    risks = source.for_students([row.student_id for row in rows]) if source.available else None
    headers = []
    if source.available:
        headers += [_("Risk tier"), _("Risk probability"), _("Change since last week")]
        headers += [_("Top reason")]
    headers += [
        _("Name"),
        _("Name (Bengali)"),
        _("Identifier"),
        _("School"),
        _("Grade"),
        _("Section"),
        _("Attendance this month"),
        _("Open interventions"),
        _("Overdue reviews"),
    ]
    audit_record(
        user=user,
        action=AuditAction.EXPORTED,
        detail={
            "list": "caseload",
            "format": fmt,
            "rows": len(rows),
            "school": filters.school,
            "grade": filters.grade,
            "searched": bool(filters.q),
        },
    )
    return export_response(
        name=f"caseload-{today.isoformat()}",
        fmt=fmt,
        headers=headers,
        rows=_caseload_export_rows(rows, risks),
    )


# --- Student page ------------------------------------------------------------------


@dataclass
class TimelineEntry:
    date: dt.date
    kind: str  # "incident", "intervention", "outcome"
    item: Any


def _timeline(incidents: list[Any], interventions: list[Any], outcomes: list[Any]) -> list[Any]:
    entries = [TimelineEntry(i.date, "incident", i) for i in incidents]
    entries += [TimelineEntry(i.start_date, "intervention", i) for i in interventions]
    entries += [TimelineEntry(o.observed_on, "outcome", o) for o in outcomes]
    return sorted(entries, key=lambda entry: entry.date, reverse=True)


def _student_context(request: HttpRequest, pk: int) -> dict[str, Any]:
    user = _user(request)
    student = student_for_user(user, pk)
    today = timezone.localdate()
    enrollments = student_enrollments(student)
    year = enrollments[0].academic_year if enrollments else academic_year_of(today)
    weeks = student_weekly_attendance(student, year)
    interventions = list(interventions_of_student(student))
    outcomes = list(outcomes_of_student(student))
    incidents = student_incidents(student)
    # Interventions and incidents beside the week they happened in.
    events_by_week: dict[dt.date, list[str]] = {}
    for incident in incidents:
        events_by_week.setdefault(week_start_of(incident.date), []).append(
            str(incident.get_category_display())
        )
    for plan in interventions:
        events_by_week.setdefault(week_start_of(plan.start_date), []).append(
            str(plan.get_intervention_type_display())
        )
    source = risk_source()
    current = source.for_students([student.pk]).get(student.pk)
    my_feedback = None
    if current is not None:
        my_feedback = (
            feedback_of_student(student)
            .filter(prediction_id=current.prediction_id, given_by=user)
            .first()
        )
    history = source.history(student.pk)
    return {
        "student": student,
        "enrollments": enrollments,
        "current_enrollment": next((e for e in enrollments if e.exit_date is None), None),
        "year": year,
        "weeks": [(week, events_by_week.get(week.week_start, [])) for week in weeks],
        "attendance_chart": {
            "labels": [w.week_start.isoformat() for w in weeks],
            "values": [round(w.rate * 100, 1) if w.rate is not None else None for w in weeks],
            "interventions": [
                100
                if any(week_start_of(p.start_date) == w.week_start for p in interventions)
                else None
                for w in weeks
            ],
        },
        "marks": student_marks(student, year),
        "incidents": incidents,
        "interventions": interventions,
        "outcomes": outcomes,
        "timeline": _timeline(incidents, interventions, outcomes),
        "risk_available": source.available,
        "risk": current,
        "risk_history": history,
        "risk_chart": {
            "labels": [p.week_start.isoformat() for p in history],
            "values": [round(p.probability * 100, 1) for p in history],
        },
        "risk_factors": source.factors(student.pk),
        "my_feedback": my_feedback,
        "today": today,
        "can_record": user.has_perm("feedback.add_intervention"),
        "tiers": RiskTier,
        "nav": "caseload",
    }


@staff_page
@require_GET
def student_view(request: HttpRequest, pk: int) -> HttpResponse:
    context = _student_context(request, pk)
    student = context["student"]
    audit_record(user=_user(request), action=AuditAction.VIEWED_STUDENT, student=student)
    context["intervention_form"] = InterventionForm(
        student=student,
        user=_user(request),
        initial={
            "start_date": context["today"],
            "review_date": context["today"] + REVIEW_AFTER,
        },
    )
    context["outcome_form"] = OutcomeForm(
        student=student, initial={"observed_on": context["today"]}
    )
    if context["risk"] is not None:
        context["feedback_form"] = FeedbackForm(
            initial={"prediction_id": context["risk"].prediction_id}
        )
    return render(request, "dashboards/student.html", context)


@staff_page
def intervention_create_view(request: HttpRequest, pk: int) -> HttpResponse:
    _require(request, "feedback.add_intervention")
    user = _user(request)
    student = student_for_user(user, pk)
    today = timezone.localdate()
    form = InterventionForm(
        request.POST or None,
        student=student,
        user=user,
        initial={"start_date": today, "review_date": today + REVIEW_AFTER},
    )
    if request.method == "POST" and form.is_valid():
        try:
            intervention_create(student=student, created_by=user, **form.cleaned_data)
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, _("The intervention was recorded."))
            return redirect(reverse("dashboards:student", args=[student.pk]) + "#interventions")
    return render(
        request,
        "dashboards/intervention_form.html",
        {"form": form, "student": student, "intervention": None},
    )


@staff_page
def intervention_edit_view(request: HttpRequest, pk: int) -> HttpResponse:
    _require(request, "feedback.change_intervention")
    user = _user(request)
    intervention: Intervention = get_object_or_404(interventions_visible_to(user), pk=pk)
    student = intervention.student
    form = InterventionForm(request.POST or None, instance=intervention, student=student, user=user)
    if request.method == "POST" and form.is_valid():
        try:
            intervention_update(intervention=intervention, data=form.cleaned_data)
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, _("The intervention was updated."))
            return redirect(reverse("dashboards:student", args=[student.pk]) + "#interventions")
    return render(
        request,
        "dashboards/intervention_form.html",
        {"form": form, "student": student, "intervention": intervention},
    )


@staff_page
@require_POST
def outcome_create_view(request: HttpRequest, pk: int) -> HttpResponse:
    _require(request, "feedback.add_outcomerecord")
    user = _user(request)
    student = student_for_user(user, pk)
    form = OutcomeForm(request.POST, student=student)
    if form.is_valid():
        try:
            outcome_record(student=student, recorded_by=user, **form.cleaned_data)
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        else:
            messages.success(request, _("The outcome was recorded."))
    else:
        messages.error(request, _("The outcome was not recorded: please check the form."))
    return redirect(reverse("dashboards:student", args=[student.pk]) + "#outcomes")


@staff_page
@require_POST
def feedback_create_view(request: HttpRequest, pk: int) -> HttpResponse:
    _require(request, "feedback.add_trainingfeedback")
    user = _user(request)
    student = student_for_user(user, pk)
    form = FeedbackForm(request.POST)
    current = risk_source().for_students([student.pk]).get(student.pk)
    # Only the student's current prediction takes a verdict: an id from
    # another student or an old page is refused, not silently stored.
    if (
        form.is_valid()
        and current is not None
        and form.cleaned_data["prediction_id"] == current.prediction_id
    ):
        feedback_record(
            student=student,
            given_by=user,
            verdict=form.cleaned_data["verdict"],
            reason=form.cleaned_data["reason"],
            prediction_id=current.prediction_id,
        )
        messages.success(request, _("Thank you: your feedback was recorded."))
    else:
        messages.error(request, _("The feedback was not recorded: the risk score has changed."))
    return redirect(reverse("dashboards:student", args=[student.pk]) + "#risk")


@staff_page
@require_GET
def student_interventions_export_view(request: HttpRequest, pk: int, fmt: str) -> HttpResponse:
    if fmt not in FORMATS:
        raise Http404
    user = _user(request)
    student = student_for_user(user, pk)
    plans = list(interventions_of_student(student))
    audit_record(
        user=user,
        action=AuditAction.EXPORTED,
        student=student,
        detail={"list": "interventions", "format": fmt, "rows": len(plans)},
    )
    headers = [
        _("Type"),
        _("Tier of support"),
        _("Goal"),
        _("Owner"),
        _("Start date"),
        _("Review date"),
        _("Status"),
        _("Notes"),
        _("Outcome"),
    ]
    rows = [
        [
            p.get_intervention_type_display(),
            p.get_support_tier_display(),
            p.goal,
            p.owner.get_full_name() or p.owner.get_username(),
            p.start_date.isoformat(),
            p.review_date.isoformat(),
            p.get_status_display(),
            p.notes,
            p.outcome,
        ]
        for p in plans
    ]
    return export_response(
        name=f"interventions-{student.student_id}", fmt=fmt, headers=headers, rows=rows
    )


# --- School overview ------------------------------------------------------------------


def _school_param(request: HttpRequest) -> int | None:
    value = request.GET.get("school", "")
    return int(value) if value.isdigit() else None


@staff_page
@require_GET
def overview_view(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    today = timezone.localdate()
    school = school_for_user(user, _school_param(request))
    options = caseload_options(user, today=today)
    context: dict[str, Any] = {
        "school": school,
        "schools": options.schools,
        "today": today,
        "nav": "overview",
    }
    if school is not None:
        overview_ensure(school=school, academic_year=academic_year_of(today))
        overview = school_overview(school, today=today)
        source = risk_source()
        tier_counts = source.tier_counts([school.pk])
        risers = source.top_risers([school.pk], 10)
        students = Student.objects.in_bulk([risk.student_id for risk in risers])
        context.update(
            {
                "overview": overview,
                "risk_available": source.available,
                "tier_counts": [
                    (label, tier_counts.get(value, 0)) for value, label in RiskTier.choices
                ],
                "risers": [
                    (students[risk.student_id], risk)
                    for risk in risers
                    if risk.student_id in students
                ],
                "trend_chart": {
                    "labels": [w.week_start.isoformat() for w in overview.weekly],
                    "values": [
                        round(w.rate * 100, 1) if w.rate is not None else None
                        for w in overview.weekly
                    ],
                },
            }
        )
    return render(request, "dashboards/overview.html", context)


@staff_page
@require_GET
def overview_export_view(request: HttpRequest, fmt: str) -> HttpResponse:
    if fmt not in FORMATS:
        raise Http404
    user = _user(request)
    today = timezone.localdate()
    school = school_for_user(user, _school_param(request))
    if school is None:
        raise Http404
    overview_ensure(school=school, academic_year=academic_year_of(today))
    overview = school_overview(school, today=today)
    audit_record(
        user=user,
        action=AuditAction.EXPORTED,
        detail={"list": "school_overview", "format": fmt, "school": school.pk},
    )
    headers = [
        _("Grade"),
        _("Section"),
        _("Students"),
        _("Attendance rate"),
        _("Failing at least one subject"),
        _("With an open intervention"),
    ]
    rows = [
        [
            g.grade_level,
            g.section,
            g.students,
            round(g.attendance_rate, 3) if g.attendance_rate is not None else "",
            round(g.failing_rate, 3) if g.failing_rate is not None else "",
            g.open_interventions,
        ]
        for g in overview.groups
    ]
    return export_response(
        name=f"overview-{school.eiin}-{overview.year}", fmt=fmt, headers=headers, rows=rows
    )
