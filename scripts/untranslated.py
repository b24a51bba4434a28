#!/usr/bin/env python3
"""List the strings a language's catalogue lacks, and write translations of them back.

After ``make messages`` (or ``pybabel update``) new UI strings sit in every catalogue with an
empty or fuzzy translation. This script hands them out as JSON and takes them back:

    .venv/bin/python scripts/untranslated.py list kk > /tmp/kk.json
    # fill in every "msgstr" of /tmp/kk.json (a list of two strings for plural entries)
    .venv/bin/python scripts/untranslated.py apply kk /tmp/kk.json
    .venv/bin/pybabel compile -d webapp/translations

``list`` prints a JSON list of ``{"msgid", "msgid_plural" (plural entries only), "msgstr",
"reference", "fuzzy"}`` objects: ``msgstr`` is empty (or a list of empty strings), ``reference``
is the Russian translation when there is one, to help with the meaning, and ``fuzzy`` the guess
``pybabel update`` made from a similar string (never used until it is confirmed in ``msgstr``). With ``--pot`` the template is
compared too, so strings the catalogue does not hold at all are listed without running
``pybabel update`` first.

``apply`` accepts that list (or a plain ``{"msgid": "translation"}`` object), refuses any
translation whose placeholders (``%(name)s``, ``{name}``, HTML tags) differ from the source,
writes the rest into the catalogue and clears their fuzzy flag. It exits with status 1 when
anything was refused or is still missing, so it can gate a commit.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parents[1]
TRANSLATIONS = ROOT / "webapp" / "translations"
REFERENCE_LOCALE = "ru"
# Named placeholders, literal percent signs, {name} fields and HTML tags (not "<key>" in prose).
PLACEHOLDER = re.compile(r"%\(\w+\)[sd]|%%|\{\w*\}|</?(?:a|abbr|b|br|code|em|i|kbd|p|small|span|strong)\b[^>]*>")
PO_WIDTH = 76  # as pybabel writes them, so an update does not reflow the file


def catalogue_path(locale: str, directory: Path = TRANSLATIONS) -> Path:
    return directory / locale / "LC_MESSAGES" / "messages.po"


def load(path: Path, locale: str | None = None) -> Catalog:
    with path.open("rb") as handle:
        return read_po(handle, locale=locale)


def save(catalog: Catalog, path: Path) -> None:
    with path.open("wb") as handle:
        write_po(handle, catalog, width=PO_WIDTH)


def is_translated(message) -> bool:
    if message.fuzzy:
        return False
    if isinstance(message.string, (list, tuple)):
        return bool(message.string) and all(message.string)
    return bool(message.string)


def placeholders(text: str) -> list[str]:
    return sorted(PLACEHOLDER.findall(text or ""))


def missing(catalog: Catalog, template: Catalog | None = None) -> list:
    """Messages of ``catalog`` without a usable translation, then template messages it lacks."""
    found = [message for message in catalog if message.id and not is_translated(message)]
    if template is not None:
        found.extend(
            message for message in template
            if message.id and catalog.get(message.id, context=message.context) is None
        )
    return found


def describe(message, nplurals: int, reference: Catalog | None) -> dict:
    entry: dict = {}
    if isinstance(message.id, (list, tuple)):
        entry["msgid"], entry["msgid_plural"] = message.id[0], message.id[1]
        entry["msgstr"] = [""] * nplurals
    else:
        entry["msgid"] = message.id
        entry["msgstr"] = ""
    if message.fuzzy and message.string and any(message.string if isinstance(message.string, tuple) else [message.string]):
        entry["fuzzy"] = list(message.string) if isinstance(message.string, (list, tuple)) else message.string
    known = reference.get(message.id) if reference is not None else None
    if known is not None and is_translated(known):
        entry["reference"] = list(known.string) if isinstance(known.string, (list, tuple)) else known.string
    return entry


def translations_from(data) -> dict[str, object]:
    """``{singular msgid: str or list}`` from a ``list`` output or a plain mapping."""
    if isinstance(data, dict):
        return data
    if not isinstance(data, list):
        raise ValueError("expected a JSON list of entries or an object of msgid: translation")
    result = {}
    for entry in data:
        if not isinstance(entry, dict) or "msgid" not in entry:
            raise ValueError(f"an entry without a msgid: {entry!r}")
        result[entry["msgid"]] = entry.get("msgstr", "")
    return result


def check(source: tuple[str, ...], translation: tuple[str, ...], nplurals: int) -> str | None:
    """Why ``translation`` cannot be used for ``source`` (None when it can)."""
    if len(source) == 2 and len(translation) != nplurals:
        return f"needs {nplurals} plural forms"
    if any(not isinstance(text, str) or not text.strip() for text in translation):
        return "empty"
    for index, text in enumerate(translation):
        original = source[min(index, len(source) - 1)]
        wanted, got = placeholders(original), placeholders(text)
        # A singular form may leave its number out ("one point"), as English sometimes does.
        if got != wanted and not (len(source) == 2 and index == 0 and set(got) <= set(placeholders(source[1]))):
            return f"placeholders {got} instead of {wanted}"
    return None


def apply(catalog: Catalog, template: Catalog | None, translations: dict[str, object]) -> tuple[int, list[str]]:
    """Write ``translations`` into ``catalog``; returns (how many were written, refusals)."""
    nplurals = catalog.num_plurals
    written, refused = 0, []
    for msgid, value in translations.items():
        message = catalog.get(msgid)
        if message is None and template is not None and template.get(msgid) is not None:
            source = template.get(msgid)
            catalog.add(source.id, string=("",) * nplurals if isinstance(source.id, tuple) else "",
                        flags=source.flags)
            message = catalog.get(msgid)
        if message is None:
            refused.append(f"{msgid!r}: not in the catalogue (pass --pot, or run pybabel update)")
            continue
        if value in ("", None) or value == [] or (isinstance(value, list) and not any(value)):
            continue  # left for later
        source = tuple(message.id) if isinstance(message.id, (list, tuple)) else (message.id,)
        translation = tuple(value) if isinstance(value, list) else (value,)
        if len(source) == 1 and len(translation) != 1:
            refused.append(f"{msgid!r}: a single string is expected")
            continue
        problem = check(source, translation, nplurals)
        if problem:
            refused.append(f"{msgid!r}: {problem}")
            continue
        message.string = translation if len(source) == 2 else translation[0]
        message.flags.discard("fuzzy")
        written += 1
    return written, refused


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, default=TRANSLATIONS, help="the translations folder")
    parser.add_argument("--pot", type=Path, help="also compare with this template (messages.pot)")
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="print the missing strings as JSON")
    listing.add_argument("locale")
    applying = commands.add_parser("apply", help="write translations from a JSON file")
    applying.add_argument("locale")
    applying.add_argument("file", type=Path)
    args = parser.parse_args(argv)

    path = catalogue_path(args.locale, args.dir)
    if not path.exists():
        parser.error(f"no catalogue at {path}; create it with pybabel init -l {args.locale}")
    catalog = load(path, args.locale)
    template = load(args.pot) if args.pot else None

    if args.command == "list":
        reference_path = catalogue_path(REFERENCE_LOCALE, args.dir)
        reference = (
            load(reference_path, REFERENCE_LOCALE)
            if reference_path.exists() and args.locale != REFERENCE_LOCALE else None
        )
        entries = [describe(message, catalog.num_plurals, reference) for message in missing(catalog, template)]
        json.dump(entries, sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
        return 0

    try:
        translations = translations_from(json.loads(args.file.read_text(encoding="utf-8")))
    except (OSError, ValueError) as error:
        print(f"cannot read {args.file}: {error}", file=sys.stderr)
        return 1
    written, refused = apply(catalog, template, translations)
    save(catalog, path)
    left = missing(catalog, template)
    for problem in refused:
        print(f"refused {problem}", file=sys.stderr)
    print(f"{args.locale}: {written} written, {len(refused)} refused, {len(left)} still missing", file=sys.stderr)
    return 1 if refused or left else 0


if __name__ == "__main__":
    sys.exit(main())
