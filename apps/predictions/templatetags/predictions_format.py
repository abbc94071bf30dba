from typing import Any

from django import template
from django.utils.formats import number_format

register = template.Library()


@register.filter
def metric(value: Any, digits: int = 3) -> str:
    """A metric with fixed decimals, or a dash when it is undefined (one class, no data)."""
    if value is None or value == "":
        return "—"
    return number_format(float(value), decimal_pos=int(digits))


@register.filter
def percent(value: Any) -> str:
    if value is None or value == "":
        return "—"
    return number_format(100.0 * float(value), decimal_pos=1) + "%"


@register.filter
def signed(value: Any) -> str:
    if value is None or value == "":
        return "—"
    number = float(value)
    return ("+" if number >= 0 else "−") + number_format(abs(number), decimal_pos=3)
