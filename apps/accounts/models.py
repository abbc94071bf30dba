from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils.translation import gettext_lazy as _


class Role(models.TextChoices):
    ADMINISTRATOR = "administrator", _("Administrator")
    DATA_MANAGER = "data_manager", _("Data manager")
    COUNSELOR = "counselor", _("Counselor")
    ANALYST = "analyst", _("Analyst")


class User(AbstractUser):
    # Roles are Django groups named after Role values; this mirrors the main one
    # for display and quick checks without a join.
    role = models.CharField(_("role"), max_length=20, choices=Role.choices, blank=True)
    preferred_language = models.CharField(
        _("preferred language"),
        max_length=5,
        choices=[("en", _("English")), ("bn", _("Bengali"))],
        blank=True,
    )

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")

    def __str__(self) -> str:
        return self.username

    @property
    def sees_everything(self) -> bool:
        return self.is_superuser or self.role == Role.ADMINISTRATOR
