from typing import Any

from mozilla_django_oidc.auth import OIDCAuthenticationBackend

from apps.accounts.models import Role, User
from apps.accounts.services import user_create


class EduPulseOIDCBackend(OIDCAuthenticationBackend):
    # Accounts created through single sign-on start as counselors with no
    # scope: they see nothing until a data manager attaches schools.
    def create_user(self, claims: dict[str, Any]) -> User:
        return user_create(
            username=claims.get("preferred_username") or claims["email"],
            password=None,
            role=Role.COUNSELOR,
            email=claims.get("email", ""),
        )
