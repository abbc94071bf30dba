"""Fill the catalogues after makemessages: en repeats msgid, bn comes from a file.

    .venv/bin/python scripts/i18n_fill.py [translations.tsv]

The TSV holds `msgid<TAB>Bengali` lines (use \\n for a newline inside a
message). Entries it fills lose their fuzzy flag. It prints every bn entry
still untranslated or fuzzy, and exits 1 while any remain, so a forgotten
string is caught before the i18n tests catch it. Compile afterwards (see
locale/README.md).
"""

import sys
from pathlib import Path

import polib

LOCALE = Path(__file__).resolve().parent.parent / "locale"


def read_translations(path: Path) -> dict[str, str]:
    pairs = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        if "\t" not in line:
            sys.exit(f"{path}:{number}: expected msgid<TAB>translation")
        msgid, translation = line.split("\t", 1)
        pairs[msgid.replace("\\n", "\n")] = translation.replace("\\n", "\n")
    return pairs


def unfuzz(entry: polib.POEntry) -> None:
    if "fuzzy" in entry.flags:
        entry.flags.remove("fuzzy")
    entry.previous_msgid = None
    entry.previous_msgid_plural = None


def fill_english() -> None:
    po = polib.pofile(str(LOCALE / "en" / "LC_MESSAGES" / "django.po"), wrapwidth=79)
    for entry in po:
        if entry.obsolete:
            continue
        if entry.msgid_plural:
            entry.msgstr_plural = {0: entry.msgid, 1: entry.msgid_plural}
        else:
            entry.msgstr = entry.msgid
        unfuzz(entry)
    po.save()


def fill_bengali(translations: dict[str, str]) -> list[str]:
    po = polib.pofile(str(LOCALE / "bn" / "LC_MESSAGES" / "django.po"), wrapwidth=79)
    for entry in po:
        if entry.obsolete or entry.msgid not in translations:
            continue
        text = translations[entry.msgid]
        if entry.msgid_plural:
            entry.msgstr_plural = {0: text, 1: text}
        else:
            entry.msgstr = text
        unfuzz(entry)
    po.save()
    return [e.msgid for e in po if not e.obsolete and (not e.translated() or "fuzzy" in e.flags)]


def main() -> int:
    translations = read_translations(Path(sys.argv[1])) if len(sys.argv) > 1 else {}
    fill_english()
    missing = fill_bengali(translations)
    for msgid in missing:
        print(f"bn needs a translation: {msgid!r}")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
