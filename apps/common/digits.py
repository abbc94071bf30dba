"""Digits in the active language's script (Bengali writes ০-৯)."""

from django.utils.translation import get_language

_BENGALI_DIGITS = str.maketrans("0123456789", "০১২৩৪৫৬৭৮৯")


def uses_bengali_digits(language: str | None) -> bool:
    return (language or "").startswith("bn")


def localise_digits(text: str, language: str | None = None) -> str:
    """`text` with Western digits written in `language`'s (default: the active one)."""
    if uses_bengali_digits(language if language is not None else get_language()):
        return text.translate(_BENGALI_DIGITS)
    return text
