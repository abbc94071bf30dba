"""The translation catalogues are complete, current with the code, compiled, and used.

STYLE.md rule 11: a test fails when a ``bn`` message is missing or fuzzy. The
workflow these tests hold the repository to is in ``locale/README.md``.
"""

import gettext
import importlib
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import polib
import pytest
from django.conf import settings
from django.contrib import admin
from django.utils.translation import override

from apps.accounts.models import Role
from apps.students.models import ExitReason, RegionLevel, Student

ROOT = Path(__file__).resolve().parent.parent
LOCALE_DIR = ROOT / "locale"
LANGUAGES = ("bn", "en")

# Keep in step with the makemessages command in locale/README.md.
MAKEMESSAGES_IGNORE = (".venv", "ml", "benchmarks", "tests", "var")
MAKEMESSAGES_OPTIONS = ("--no-location", "--no-obsolete")
# Not worth copying into the scratch tree: ignored by makemessages or build output.
COPY_SKIP = {*MAKEMESSAGES_IGNORE, "locale", "media", "staticfiles", "demo-out", "node_modules"}

PLACEHOLDER = re.compile(r"%(?:\([^)]+\))?[-#0 +]*\d*(?:\.\d+)?[diouxXeEfFgGcrsa%]|\{[^{}]*\}")

Key = tuple[str | None, str, str | None]


def po_path(lang: str) -> Path:
    return LOCALE_DIR / lang / "LC_MESSAGES" / "django.po"


def mo_path(lang: str) -> Path:
    return LOCALE_DIR / lang / "LC_MESSAGES" / "django.mo"


def load_po(path: Path) -> polib.POFile:
    assert path.is_file(), f"{path.relative_to(ROOT)} is missing; see locale/README.md"
    return polib.pofile(str(path))


def live_entries(po: polib.POFile) -> list[polib.POEntry]:
    return [entry for entry in po if not entry.obsolete]


def key_of(entry: polib.POEntry) -> Key:
    return (entry.msgctxt, entry.msgid, entry.msgid_plural or None)


def describe(key: Key) -> str:
    context, msgid, plural = key
    text = repr(msgid) if plural is None else f"{msgid!r} / {plural!r}"
    return text if context is None else f"{text} (context {context!r})"


def test_settings_use_these_catalogues() -> None:
    assert [code for code, _name in settings.LANGUAGES] == ["en", "bn"]
    assert LOCALE_DIR in [Path(path) for path in settings.LOCALE_PATHS]


# (a) Every message translated, nothing fuzzy.


@pytest.mark.parametrize("lang", LANGUAGES)
def test_catalogue_is_complete(lang: str) -> None:
    po = load_po(po_path(lang))
    problems = []
    if po.metadata_is_fuzzy:
        problems.append("the header is marked fuzzy")
    if po.metadata.get("Language") != lang:
        problems.append(f"the header's Language is {po.metadata.get('Language')!r}")
    if "nplurals=" not in po.metadata.get("Plural-Forms", ""):
        problems.append("the header has no Plural-Forms")
    for entry in live_entries(po):
        if "fuzzy" in entry.flags:
            problems.append(f"fuzzy: {describe(key_of(entry))}")
        elif not entry.translated():
            problems.append(f"untranslated: {describe(key_of(entry))}")
    assert not problems, f"{po_path(lang).relative_to(ROOT)}:\n  " + "\n  ".join(problems)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_translations_keep_the_placeholders(lang: str) -> None:
    problems = []
    for entry in live_entries(load_po(po_path(lang))):
        translations = (
            [entry.msgstr] if not entry.msgid_plural else list(entry.msgstr_plural.values())
        )
        wanted = sorted(PLACEHOLDER.findall(entry.msgid_plural or entry.msgid))
        for translation in translations:
            if translation and sorted(PLACEHOLDER.findall(translation)) != wanted:
                problems.append(f"{describe(key_of(entry))} -> {translation!r}")
    assert not problems, f"{po_path(lang).relative_to(ROOT)}:\n  " + "\n  ".join(problems)


# (b) The committed catalogues hold exactly the messages the code has.


def _copy_skip(directory: str, names: list[str]) -> set[str]:
    skipped = {name for name in names if name.startswith(".") or name == "__pycache__"}
    if Path(directory).resolve() == ROOT:
        skipped |= COPY_SKIP & set(names)
    return skipped


@pytest.fixture(scope="module")
def fresh_catalogue(tmp_path_factory: pytest.TempPathFactory) -> Iterator[polib.POFile]:
    """The catalogue makemessages writes for the code as it is, built in a scratch copy.

    makemessages writes next to the sources it scans, so it runs on a copy and
    the repository's locale/ is never touched.
    """
    if shutil.which("xgettext") is None or shutil.which("msgmerge") is None:
        if os.environ.get("EDUPULSE_REQUIRE_SERVICES") == "1":
            pytest.fail("GNU gettext (xgettext, msgmerge) is not installed")
        pytest.skip("GNU gettext (xgettext, msgmerge) is not installed")
    source = tmp_path_factory.mktemp("i18n") / "src"
    shutil.copytree(ROOT, source, ignore=_copy_skip)
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": settings.SETTINGS_MODULE}
    command = [
        sys.executable,
        "manage.py",
        "makemessages",
        "-l",
        "bn",
        *MAKEMESSAGES_OPTIONS,
        *(f"--ignore={pattern}" for pattern in MAKEMESSAGES_IGNORE),
    ]
    result = subprocess.run(
        command, cwd=source, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, f"makemessages failed:\n{result.stdout}\n{result.stderr}"
    fresh = source / "locale" / "bn" / "LC_MESSAGES" / "django.po"
    assert fresh.is_file(), f"makemessages wrote no catalogue:\n{result.stdout}"
    yield polib.pofile(str(fresh))


@pytest.mark.parametrize("lang", LANGUAGES)
def test_catalogue_is_current_with_the_code(lang: str, fresh_catalogue: polib.POFile) -> None:
    in_code = {key_of(entry) for entry in live_entries(fresh_catalogue)}
    committed = {key_of(entry) for entry in live_entries(load_po(po_path(lang)))}
    problems = [f"missing: {describe(key)}" for key in sorted(in_code - committed, key=str)]
    problems += [
        f"no longer in the code: {describe(key)}" for key in sorted(committed - in_code, key=str)
    ]
    assert not problems, (
        f"{po_path(lang).relative_to(ROOT)} is out of date; run makemessages as "
        "locale/README.md says, translate, and compilemessages:\n  " + "\n  ".join(problems)
    )


# (c) The committed .mo is the compiled .po.


@pytest.mark.parametrize("lang", LANGUAGES)
def test_compiled_catalogue_matches(lang: str) -> None:
    path = mo_path(lang)
    assert path.is_file(), f"{path.relative_to(ROOT)} is missing; run compilemessages"
    with path.open("rb") as handle:
        compiled = dict(gettext.GNUTranslations(handle)._catalog)  # type: ignore[attr-defined]
    compiled.pop("", None)  # the header
    expected: dict[object, str] = {}
    for entry in live_entries(load_po(po_path(lang))):
        if "fuzzy" in entry.flags or not entry.translated():
            continue  # msgfmt leaves these out; test_catalogue_is_complete reports them
        msgid = entry.msgid if entry.msgctxt is None else f"{entry.msgctxt}\x04{entry.msgid}"
        if entry.msgid_plural:
            for index, text in entry.msgstr_plural.items():
                expected[(msgid, int(index))] = text
        else:
            expected[msgid] = entry.msgstr
    problems = [
        f"{key!r}: .po has {expected.get(key)!r}, .mo has {compiled.get(key)!r}"
        for key in sorted(expected.keys() | compiled.keys(), key=str)
        if expected.get(key) != compiled.get(key)
    ]
    assert not problems, f"{path.relative_to(ROOT)} is stale; run compilemessages:\n  " + (
        "\n  ".join(problems)
    )


# (d) Django serves the Bengali catalogue.


def test_bengali_is_served() -> None:
    importlib.import_module(settings.ROOT_URLCONF)  # sets the admin site's titles
    with override("bn"):
        assert str(Student._meta.verbose_name) == "শিক্ষার্থী"
        assert str(ExitReason.DROPPED_OUT.label) == "ঝরে পড়েছে"
        assert str(RegionLevel.UPAZILA.label) == "উপজেলা"
        assert str(Role.COUNSELOR.label) == "কাউন্সেলর"
        assert str(admin.site.site_header) == "EduPulse প্রশাসন"
    with override("en"):
        assert str(Student._meta.verbose_name) == "student"
        assert str(ExitReason.DROPPED_OUT.label) == "Dropped out"
        assert str(admin.site.site_header) == "EduPulse administration"
