from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class CaseloadVisit(models.Model):
    """When a user last opened the caseload, for "new high-risk since your last visit"."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        on_delete=models.CASCADE,
        related_name="caseload_visit",
    )
    last_seen_at = models.DateTimeField(_("last seen at"))

    class Meta:
        verbose_name = _("caseload visit")
        verbose_name_plural = _("caseload visits")

    def __str__(self) -> str:
        return f"{self.user_id} {self.last_seen_at:%Y-%m-%d %H:%M}"
