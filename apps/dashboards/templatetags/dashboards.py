"""Numbers and dates in the active language's digits (Bengali uses ০-৯)."""

import datetime as dt
from typing import Any

from django import template
from django.utils import formats

from apps.common.digits import localise_digits

register = template.Library()


@register.filter
def num(value: Any, decimals: int | None = None) -> str:
    if value is None or value == "":
        return "—"
    if decimals is not None:
        value = round(float(value), int(decimals))
    return localise_digits(formats.number_format(value, decimal_pos=decimals, use_l10n=True))


@register.filter
def pct(value: float | None) -> str:
    """A 0..1 ratio as a whole percentage."""
    if value is None:
        return "—"
    return localise_digits(f"{round(value * 100)}%")


@register.filter
def signed_pct(value: float | None) -> str:
    """A change in probability points, with its sign: +12%, −3%."""
    if value is None:
        return "—"
    points = round(value * 100)
    sign = "+" if points > 0 else ("−" if points < 0 else "±")
    return localise_digits(f"{sign}{abs(points)}%")


@register.filter
def day(value: dt.date | dt.datetime | None, fmt: str = "DATE_FORMAT") -> str:
    if value is None:
        return "—"
    return localise_digits(formats.date_format(value, fmt))


@register.filter
def digits(value: Any) -> str:
    return localise_digits(str(value))


@register.filter
def days(values: Any) -> str:
    """A list of dates, short, comma-separated."""
    return ", ".join(day(value, "SHORT_DATE_FORMAT") for value in values)
