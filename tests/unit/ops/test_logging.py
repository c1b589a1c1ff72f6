import json
import logging

from stethoscope.ops.logging import JsonFormatter, use_format


def record(**extra) -> logging.LogRecord:
    made = logging.LogRecord(
        "stethoscope.x", logging.ERROR, __file__, 1, "a %s", ("b",), None
    )
    made.__dict__.update(extra)
    return made


def test_a_record_is_one_json_line():
    line = JsonFormatter().format(record(fields={"request_id": "r1", "status": 500}))

    assert "\n" not in line
    parsed = json.loads(line)
    assert parsed["time"].endswith("+00:00")
    assert {k: v for k, v in parsed.items() if k != "time"} == {
        "level": "ERROR",
        "logger": "stethoscope.x",
        "message": "a b",
        "request_id": "r1",
        "status": 500,
    }


def test_a_traceback_is_one_member():
    try:
        raise ValueError("bad")
    except ValueError:
        import sys

        made = record(exc_info=sys.exc_info())

    parsed = json.loads(JsonFormatter().format(made))

    assert parsed["traceback"].startswith("Traceback")
    assert "ValueError: bad" in parsed["traceback"]


def test_json_replaces_the_handlers_formatters_and_text_keeps_them():
    logger = logging.getLogger("stethoscope.tests.use_format")
    handler = logging.StreamHandler()
    text = logging.Formatter("%(message)s")
    handler.setFormatter(text)
    logger.addHandler(handler)
    try:
        use_format("text", logger)
        assert handler.formatter is text
        use_format("json", logger)
        assert isinstance(handler.formatter, JsonFormatter)
    finally:
        logger.removeHandler(handler)
