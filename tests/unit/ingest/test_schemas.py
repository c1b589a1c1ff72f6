import datetime

import pytest

from stethoscope.errors import Invalid
from stethoscope.ingest.schemas import fingerprint, parse_json, validate_reading

VALID = {"badge_id": "1", "pi_id": "2", "beacons": {"a": -30, "b": -35, "c": -40}}


def fields(exc_info) -> set[str]:
    return {error.field for error in exc_info.value.errors}


class TestValidateReading:
    def test_original_contract(self):
        item = validate_reading(VALID, max_beacons=32)
        assert item.badge_id == "1"
        assert item.pi_id == "2"
        assert item.beacons == {"a": -30, "b": -35, "c": -40}
        assert item.badge_strength is None
        assert item.observed_at is None

    def test_not_heard_is_dropped(self):
        item = validate_reading(
            {**VALID, "beacons": {"a": -128, "b": -70}}, max_beacons=32
        )
        assert item.beacons == {"b": -70}

    def test_unknown_fields_are_ignored(self):
        item = validate_reading({**VALID, "firmware": "2.1"}, max_beacons=32)
        assert not hasattr(item, "firmware")

    def test_observed_at_without_offset_is_utc(self):
        item = validate_reading(
            {**VALID, "observed_at": "2026-11-28T10:00:00"}, max_beacons=32
        )
        assert item.observed_at == datetime.datetime(
            2026, 11, 28, 10, tzinfo=datetime.UTC
        )

    def test_observed_at_offset_is_converted_to_utc(self):
        item = validate_reading(
            {**VALID, "observed_at": "2026-11-28T10:00:00+02:00"}, max_beacons=32
        )
        assert item.observed_at == datetime.datetime(
            2026, 11, 28, 8, tzinfo=datetime.UTC
        )

    @pytest.mark.parametrize(
        ("text", "utc"),
        [
            ("2026-11-28T10:00:00Z", "2026-11-28T10:00:00+00:00"),
            ("2026-11-28t10:00:00z", "2026-11-28T10:00:00+00:00"),
            ("2026-11-28T10:00:00-00:00", "2026-11-28T10:00:00+00:00"),
            ("2026-11-28T10:00:00+0200", "2026-11-28T08:00:00+00:00"),
            ("2026-11-28T10:00:00.1+02:00", "2026-11-28T08:00:00.100000+00:00"),
            ("2026-11-28T10:00:00,5Z", "2026-11-28T10:00:00.500000+00:00"),
            ("2026-11-28T10:00:00.123456789Z", "2026-11-28T10:00:00.123456+00:00"),
            ("2026-11-28 10:00:00", "2026-11-28T10:00:00+00:00"),
            ("2026-11-28T10:00", "2026-11-28T10:00:00+00:00"),
            ("2026-11-28", "2026-11-28T00:00:00+00:00"),
            # At the limits, but within them in UTC.
            ("0001-01-01T00:00:00-01:00", "0001-01-01T01:00:00+00:00"),
            ("9999-12-31T23:59:59+01:00", "9999-12-31T22:59:59+00:00"),
        ],
    )
    def test_iso_forms_are_accepted(self, text, utc):
        item = validate_reading({**VALID, "observed_at": text}, max_beacons=32)
        assert item.observed_at.isoformat() == utc

    @pytest.mark.parametrize(
        ("change", "field"),
        [
            ({"badge_id": 1}, "badge_id"),
            ({"badge_id": ""}, "badge_id"),
            ({"badge_id": "x" * 65}, "badge_id"),
            ({"badge_id": "has space"}, "badge_id"),
            ({"badge_id": "caf\u00e9"}, "badge_id"),
            ({"pi_id": None}, "pi_id"),
            ({"beacons": []}, "beacons"),
            ({"beacons": {"a": True}}, "beacons.a"),
            ({"beacons": {"a": -30.5}}, "beacons.a"),
            ({"beacons": {"a": "-30"}}, "beacons.a"),
            ({"beacons": {"a": -129}}, "beacons.a"),
            ({"beacons": {"a": 21}}, "beacons.a"),
            ({"beacons": {"a": 2**70}}, "beacons.a"),
            ({"beacons": {"": -30}}, "beacons"),
            ({"badge_strength": False}, "badge_strength"),
            ({"badge_strength": 128}, "badge_strength"),
            ({"observed_at": 1700000000}, "observed_at"),
            ({"observed_at": "yesterday"}, "observed_at"),
            # Epoch seconds or milliseconds as text, which lax parsing takes.
            ({"observed_at": "1795948382"}, "observed_at"),
            ({"observed_at": "0"}, "observed_at"),
            ({"observed_at": "-1"}, "observed_at"),
            ({"observed_at": "+1700000000"}, "observed_at"),
            ({"observed_at": "1700000000.5"}, "observed_at"),
            ({"observed_at": "1.7e9"}, "observed_at"),
            ({"observed_at": "1700000000000"}, "observed_at"),
            # Valid text, but before year 1 or after 9999 in UTC.
            ({"observed_at": "0001-01-01T00:00:00+01:00"}, "observed_at"),
            ({"observed_at": "9999-12-31T23:59:59-01:00"}, "observed_at"),
        ],
    )
    def test_invalid_field_is_named(self, change, field):
        with pytest.raises(Invalid) as exc_info:
            validate_reading({**VALID, **change}, max_beacons=32)
        assert field in fields(exc_info)

    def test_a_whole_float_is_its_integer(self):
        # JSON Schema's integer (the document's) includes -67.0.
        item = validate_reading(
            {**VALID, "beacons": {"a": -67.0}, "badge_strength": -40.0},
            max_beacons=32,
        )
        assert item.beacons == {"a": -67}
        assert type(item.beacons["a"]) is int
        assert item.badge_strength == -40
        assert fingerprint("1", item.beacons) == fingerprint("1", {"a": -67})

    def test_missing_fields_are_named(self):
        with pytest.raises(Invalid) as exc_info:
            validate_reading({}, max_beacons=32)
        assert fields(exc_info) == {"badge_id", "pi_id", "beacons"}

    def test_beacon_count_is_capped(self):
        beacons = {f"b{i}": -60 for i in range(5)}
        with pytest.raises(Invalid, match="at most 4 beacons"):
            validate_reading({**VALID, "beacons": beacons}, max_beacons=4)

    def test_not_an_object(self):
        with pytest.raises(Invalid) as exc_info:
            validate_reading([VALID], max_beacons=32, prefix="3.")
        assert fields(exc_info) == {"3"}

    def test_prefix_names_the_item(self):
        with pytest.raises(Invalid) as exc_info:
            validate_reading({**VALID, "pi_id": 7}, max_beacons=32, prefix="3.")
        assert fields(exc_info) == {"3.pi_id"}


class TestParseJson:
    @pytest.mark.parametrize(
        "body",
        [
            b"",
            b"{",
            b"NaN",
            b'{"a": Infinity}',
            b"1e400",
            b'"\\ud800"',
            b'"\xed\xa0\x80"',
            b"\xff\xfe",
            b"[" * 5000 + b"]" * 5000,
        ],
    )
    def test_refuses_what_is_not_strict_json(self, body):
        with pytest.raises(Invalid) as exc_info:
            parse_json(body)
        assert fields(exc_info) == {"body"}

    def test_huge_integer_becomes_float_and_is_refused_as_rssi(self):
        data = parse_json(
            b'{"badge_id":"1","pi_id":"2","beacons":{"a":-1' + b"0" * 30 + b"}}"
        )
        with pytest.raises(Invalid) as exc_info:
            validate_reading(data, max_beacons=32)
        assert fields(exc_info) == {"beacons.a"}


class TestFingerprint:
    def test_ignores_beacon_order(self):
        assert fingerprint("1", {"a": -30, "b": -40}) == fingerprint(
            "1", {"b": -40, "a": -30}
        )

    @pytest.mark.parametrize(
        "other",
        [("2", {"a": -30, "b": -40}), ("1", {"a": -31, "b": -40}), ("1", {"a": -30})],
    )
    def test_differs_for_other_badge_or_beacons(self, other):
        assert fingerprint("1", {"a": -30, "b": -40}) != fingerprint(*other)

    def test_separators_cannot_be_forged(self):
        # "a=1;b" could otherwise collide with a beacon id containing "=".
        assert fingerprint("1", {"a": -1, "b": -2}) != fingerprint("1", {"a=-1;b": -2})
