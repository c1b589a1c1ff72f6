"""CSV cells a spreadsheet will not run: below every feature that writes CSV
(the labelled readings, the registry's rooms and beacons).

What makes a spreadsheet read a cell as a formula (OWASP, "CSV
injection"): badge and beacon ids come from gateways and may be any
printable ASCII, and names are text an admin chose, so an export opened in
a spreadsheet could run =HYPERLINK(...) or worse. Such a cell is written
with a ``'`` before it, which reading takes off again.
"""

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n")


def escape_cell(text: str) -> str:
    """A cell as written: a ``'`` before one a spreadsheet would take for a
    formula, so that it shows as text.

    Quotes already there count too (``'=x`` is written ``''=x``), so that
    unescape_cell gives back exactly the text written, whatever it was.
    """
    if text.lstrip("'").startswith(FORMULA_STARTS):
        return "'" + text
    return text


def unescape_cell(text: str) -> str:
    """The text of a cell written by escape_cell (other cells as they are)."""
    if text.startswith("'") and text.lstrip("'").startswith(FORMULA_STARTS):
        return text[1:]
    return text
