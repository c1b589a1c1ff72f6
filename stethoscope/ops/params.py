"""Reading ids, numbers and text from paths, query strings and forms.

Whatever a client puts in a URL or a form must end as a clear 4xx, never a
500. Three things turn a careless read into a 500: ``int()`` refuses more
than 4,300 digits (ValueError), a number too big for the column makes the
database raise, and a multipart form may send a file (a FieldStorage) where
the view expects text. So a number is checked for ASCII digits and length
before ``int()``, and a form field is checked to be text.
"""

from ..errors import ValidationError

# A parameter or form field that can never be right: 400 naming the field.
InvalidParam = ValidationError


MAX_DIGITS = 19


def parse_id(raw, maximum: int, minimum: int = 0) -> int | None:
    """``raw`` as a whole number from ``minimum`` to ``maximum``, else None.

    Only ASCII digits count: ``str.isdigit`` and ``int`` also take "١٢"
    (Arabic-Indic digits), and route patterns' ``\\d`` matches them.
    """
    if not isinstance(raw, str) or not (raw.isascii() and raw.isdigit()):
        return None
    # Leading zeros are harmless; more significant digits than any maximum
    # here has (2**63 - 1: 19) cannot fit, and would make int() work hard
    # (or refuse) for nothing. Checked this way round because the ingest
    # fast path reads every Content-Length with this.
    if len(raw) > MAX_DIGITS:
        raw = raw.lstrip("0") or "0"
        if len(raw) > MAX_DIGITS:
            return None
    value = int(raw)
    return value if minimum <= value <= maximum else None


def form_text(params, name: str, default: str = "") -> str:
    """The text of form field ``name`` (``default`` when it is absent).

    Raises InvalidParam when the client sent a file under that name: a
    multipart form can, and a file is no text to strip or compare.
    """
    value = params.get(name, default)
    if not isinstance(value, str):
        raise InvalidParam(name, "must be text, not a file")
    return value


def form_texts(params, name: str) -> list[str]:
    """Every value of form field ``name``; InvalidParam when one is a file."""
    values = params.getall(name)
    if not all(isinstance(value, str) for value in values):
        raise InvalidParam(name, "must be text, not a file")
    return values
