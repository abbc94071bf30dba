from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    name = "apps.accounts"
    label = "accounts"
    verbose_name = _("Accounts")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from apps.accounts.services import roles_sync_on_migrate

        # Permissions only exist after every app migrated, so roles are synced then.
        post_migrate.connect(roles_sync_on_migrate, dispatch_uid="accounts.roles_sync")
