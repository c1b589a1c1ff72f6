"""Log records as one JSON object per line (``stethoscope.logging.format``).

In production (production.ini: ``json``) every record the process logs is
one line a log shipper can parse without a pattern: ``time`` (UTC, ISO
8601), ``level``, ``logger``, ``message``, the request's fields when the
record has them (the access line: method, route, status, duration_ms,
request_id, gateway or user; ``request_id`` on an unexpected error) and
``traceback``. In development (``text``) the ini file's formatter is kept.
"""

import datetime
import logging

import orjson


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.datetime.fromtimestamp(
                record.created, datetime.UTC
            ).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if fields:
            line.update(fields)
        if record.exc_info:
            line["traceback"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["traceback"] = record.exc_text
        return orjson.dumps(line, default=str).decode()


def use_format(log_format: str, logger: logging.Logger | None = None) -> None:
    """Have the handlers of ``logger`` (the root logger: those the ini file
    configured) write ``json`` lines; ``text`` leaves them as they are."""
    if log_format != "json":
        return
    logger = logger if logger is not None else logging.getLogger()
    for handler in logger.handlers:
        if not isinstance(handler.formatter, JsonFormatter):
            handler.setFormatter(JsonFormatter())
