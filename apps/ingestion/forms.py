from django import forms
from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.utils.translation import gettext_lazy as _

from apps.ingestion.models import ImportKind, ImportPolicy


class UploadForm(forms.Form):
    kind = forms.ChoiceField(label=_("What the file holds"), choices=ImportKind.choices)
    file = forms.FileField(
        label=_("File"), help_text=_("CSV (UTF-8, UTF-16 or Windows-1252) or Excel .xlsx")
    )
    policy = forms.ChoiceField(
        label=_("When some rows are wrong"),
        choices=ImportPolicy.choices,
        initial=ImportPolicy.ALL_OR_NOTHING,
    )
    dry_run = forms.BooleanField(
        label=_("Dry run: check the file and report, write nothing"), required=False
    )
    sheet = forms.CharField(
        label=_("Sheet"), required=False, max_length=100, help_text=_("Default: the first sheet")
    )

    def clean_file(self) -> UploadedFile:
        upload: UploadedFile = self.cleaned_data["file"]
        limit = settings.EDUPULSE_UPLOAD_MAX_MB
        if upload.size is not None and upload.size > limit * 1024 * 1024:
            raise forms.ValidationError(
                _("The file is %(size)s MB; uploads are limited to %(limit)s MB."),
                params={"size": upload.size // (1024 * 1024), "limit": limit},
            )
        return upload
