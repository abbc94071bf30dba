from typing import Any, cast

from django import forms
from django.db.models import Q
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _
from django_otp.forms import OTPTokenForm

from apps.accounts.models import Role, User
from apps.dashboards.risk import RiskTier
from apps.dashboards.selectors import SORTS, CaseloadFilters, CaseloadOptions
from apps.feedback.models import Intervention, OutcomeKind, OutcomeRecord, Verdict
from apps.students.models import Student


class DateInput(forms.DateInput):
    input_type = "date"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(format="%Y-%m-%d", **kwargs)


class CaseloadFilterForm(forms.Form):
    q = forms.CharField(label=_("Search by name or identifier"), required=False, max_length=100)
    school = forms.TypedChoiceField(label=_("School"), required=False, coerce=int)
    grade = forms.TypedChoiceField(label=_("Grade"), required=False, coerce=int)
    section = forms.ChoiceField(label=_("Section"), required=False)
    tier = forms.ChoiceField(
        label=_("Risk tier"),
        required=False,
        choices=[("", _("Any tier")), *RiskTier.choices],
    )
    rising = forms.BooleanField(label=_("Rising risk only"), required=False)
    no_intervention = forms.BooleanField(label=_("No intervention yet"), required=False)
    sort = forms.ChoiceField(
        required=False,
        choices=[("", "")] + [(k, k) for k in SORTS] + [(f"-{k}", f"-{k}") for k in SORTS],
    )

    def __init__(self, *args: Any, options: CaseloadOptions, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        bengali = (get_language() or "").startswith("bn")
        cast(forms.ChoiceField, self.fields["school"]).choices = [("", _("All schools"))] + [
            (s.pk, s.name_bn if bengali and s.name_bn else s.name) for s in options.schools
        ]
        cast(forms.ChoiceField, self.fields["grade"]).choices = [("", _("All grades"))] + [
            (g, g) for g in options.grades
        ]
        cast(forms.ChoiceField, self.fields["section"]).choices = [("", _("All sections"))] + [
            (s, s) for s in options.sections
        ]

    def filters(self) -> CaseloadFilters:
        # An invalid value (a stale bookmark, a hand-edited URL) is dropped, not an error page.
        data = self.cleaned_data if self.is_valid() else {}
        return CaseloadFilters(
            school=data.get("school") or None,
            grade=data.get("grade") or None,
            section=data.get("section") or "",
            tier=data.get("tier") or "",
            rising=bool(data.get("rising")),
            no_intervention=bool(data.get("no_intervention")),
            q=data.get("q") or "",
            sort=data.get("sort") or "",
        )


class OwnerField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        return str(obj.get_full_name() or obj.get_username())


class InterventionForm(forms.ModelForm):
    class Meta:
        model = Intervention
        fields = [
            "intervention_type",
            "support_tier",
            "goal",
            "owner",
            "start_date",
            "review_date",
            "status",
            "notes",
            "outcome",
        ]
        field_classes = {"owner": OwnerField}
        widgets = {
            "start_date": DateInput(),
            "review_date": DateInput(),
            "notes": forms.Textarea(attrs={"rows": 3}),
            "outcome": forms.Textarea(attrs={"rows": 2}),
        }

    def __init__(self, *args: Any, student: Student, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Owners: the people working at one of the student's schools, and the
        # one filling in the form.
        owner = self.fields["owner"]
        assert isinstance(owner, forms.ModelChoiceField)
        owner.queryset = (
            User.objects.filter(is_active=True)
            .filter(
                Q(pk=user.pk)
                | Q(
                    role__in=[Role.COUNSELOR, Role.ADMINISTRATOR],
                    scopes__school__enrollments__student=student,
                )
            )
            .distinct()
            .order_by("username")
        )
        if not self.instance.pk:
            self.fields["owner"].initial = user.pk

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        start, review = cleaned.get("start_date"), cleaned.get("review_date")
        if start and review and review < start:
            self.add_error("review_date", _("The review date cannot be before the start date."))
        return cleaned

    def _post_clean(self) -> None:
        # The service validates the model; the form only checks its fields.
        pass


class OutcomeForm(forms.ModelForm):
    class Meta:
        model = OutcomeRecord
        fields = ["outcome", "observed_on", "intervention", "note"]
        widgets = {"observed_on": DateInput(), "note": forms.Textarea(attrs={"rows": 2})}

    def __init__(self, *args: Any, student: Student, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["intervention"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = Intervention.objects.filter(student=student)
        cast(forms.ChoiceField, self.fields["outcome"]).choices = OutcomeKind.choices

    def _post_clean(self) -> None:
        pass


class FeedbackForm(forms.Form):
    prediction_id = forms.IntegerField(widget=forms.HiddenInput)
    verdict = forms.ChoiceField(choices=Verdict.choices)
    reason = forms.CharField(
        label=_("Reason (optional)"), required=False, max_length=1000, widget=forms.Textarea
    )


class VerifyForm(OTPTokenForm):
    otp_error_messages = {
        "token_required": _("Please enter your one-time password."),
        "challenge_exception": _("The code could not be sent. Please try again."),
        "not_interactive": _("This device cannot send a code."),
        "challenge_message": _("A code has been sent."),
        "invalid_token": _("That code is not right. Please check it and try again."),
        "n_failed_attempts": _("Too many wrong codes. Please wait a moment and try again."),
        "verification_not_allowed": _("Verification is not allowed now."),
        "device_required": _("Please choose a device."),
    }

    def __init__(self, user: User, request: Any = None, *args: Any, **kwargs: Any) -> None:
        super().__init__(user, request, *args, **kwargs)
        self.fields["otp_device"].label = _("Device")
        self.fields["otp_token"].label = _("One-time password")
        self.fields["otp_token"].widget.attrs.update(
            {"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}
        )
        self.fields["otp_challenge"].widget = forms.HiddenInput()
