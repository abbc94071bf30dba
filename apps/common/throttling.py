"""Throttles named in REST_FRAMEWORK; kept apart from the views (DRF imports them early)."""

from typing import Any

from rest_framework.authtoken.models import Token
from rest_framework.throttling import SimpleRateThrottle


class TokenRateThrottle(SimpleRateThrottle):
    """Per API token: each script token has its own budget, apart from its owner's."""

    scope = "token"

    def get_cache_key(self, request: Any, view: Any) -> str | None:
        if not isinstance(request.auth, Token):
            return None  # session or anonymous: the user and anon throttles apply
        return self.cache_format % {"scope": self.scope, "ident": request.auth.pk}
