"""Strict readers for settings taken from the environment.

django-environ parses URLs well but quietly turns a misspelt boolean into
False; a deployment with DEBUG=ture must stop at start-up, not run with a
surprise. Every reader here raises ImproperlyConfigured naming the variable.
"""

import os
from collections.abc import Mapping
from typing import Any

import environ
from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
WEEKDAYS = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"}


class Env:
    def __init__(self, environ_map: Mapping[str, str] | None = None) -> None:
        self._environ = os.environ if environ_map is None else environ_map

    def _raw(self, name: str) -> str | None:
        value = self._environ.get(name)
        if value is None or value.strip() == "":
            return None
        return value.strip()

    def has(self, name: str) -> bool:
        return self._raw(name) is not None

    def text(self, name: str, default: str | None = None) -> str:
        value = self._raw(name)
        if value is None:
            if default is None:
                raise ImproperlyConfigured(f"{name} must be set.")
            return default
        return value

    def flag(self, name: str, default: bool) -> bool:
        value = self._raw(name)
        if value is None:
            return default
        if value.lower() in _TRUE:
            return True
        if value.lower() in _FALSE:
            return False
        raise ImproperlyConfigured(f"{name}={value!r} is not a boolean (use true or false).")

    def integer(self, name: str, default: int, *, minimum: int | None = None) -> int:
        value = self._raw(name)
        if value is None:
            return default
        try:
            number = int(value)
        except ValueError:
            raise ImproperlyConfigured(f"{name}={value!r} is not an integer.") from None
        if minimum is not None and number < minimum:
            raise ImproperlyConfigured(f"{name}={number} must be at least {minimum}.")
        return number

    def items(self, name: str, default: list[str]) -> list[str]:
        value = self._raw(name)
        if value is None:
            return list(default)
        return [item.strip() for item in value.split(",") if item.strip()]

    def weekdays(self, name: str, default: list[str]) -> list[str]:
        days = self.items(name, default)
        if not days or not set(days) <= WEEKDAYS:
            raise ImproperlyConfigured(f"{name} must list weekday names like sun,mon,tue.")
        return days

    def choice(self, name: str, default: str, choices: set[str]) -> str:
        value = self.text(name, default)
        if value not in choices:
            allowed = ", ".join(sorted(choices))
            raise ImproperlyConfigured(f"{name}={value!r} is not one of: {allowed}.")
        return value

    def month_day(self, name: str, default: str) -> tuple[int, int]:
        value = self.text(name, default)
        try:
            month_text, day_text = value.split("-")
            month, day = int(month_text), int(day_text)
        except ValueError:
            raise ImproperlyConfigured(f"{name}={value!r} must look like MM-DD.") from None
        if not (1 <= month <= 12 and 1 <= day <= 28):
            raise ImproperlyConfigured(f"{name}={value!r}: month 1-12 and day 1-28.")
        return month, day

    def database(self, name: str, default: str) -> dict[str, Any]:
        url = self.text(name, default)
        try:
            config = environ.Env.db_url_config(url)
        except (KeyError, ValueError) as error:
            raise ImproperlyConfigured(
                f"{name} is not a database URL we support: {error}"
            ) from None
        if not str(config.get("ENGINE", "")).startswith("django.db.backends."):
            raise ImproperlyConfigured(f"{name} is not a database URL we support.")
        return config

    def url(self, name: str, default: str | None = None, *, schemes: set[str]) -> str | None:
        value = self._raw(name)
        if value is None:
            return default
        scheme = value.split("://", 1)[0] if "://" in value else ""
        if scheme not in schemes:
            allowed = ", ".join(sorted(schemes))
            raise ImproperlyConfigured(f"{name} must be a URL with scheme {allowed}.")
        return value
