import pytest
from webob.multidict import MultiDict
from webob.request import Request

from stethoscope.ops.params import InvalidParam, form_text, form_texts, parse_id


class TestParseId:
    @pytest.mark.parametrize(
        "raw, expected",
        [
            ("0", 0),
            ("42", 42),
            ("0042", 42),
            ("2147483647", 2**31 - 1),
            ("0" * 100 + "7", 7),
            ("0" * 5000 + "7", 7),  # zeros do not count against int()'s limit
        ],
    )
    def test_whole_numbers_in_range(self, raw, expected):
        assert parse_id(raw, 2**31 - 1) == expected

    @pytest.mark.parametrize(
        "raw",
        [
            "",
            "-1",
            "+1",
            " 1",
            "1.0",
            "1_000",
            "١",  # Arabic-Indic one: isdigit() and int() take it
            "²",
            "2147483648",
            "9" * 30,
            "1" * 5000,  # int() refuses more than 4,300 digits
            None,
            7,
        ],
    )
    def test_anything_else_is_none(self, raw):
        assert parse_id(raw, 2**31 - 1) is None

    def test_a_minimum(self):
        assert parse_id("0", 10, minimum=1) is None
        assert parse_id("1", 10, minimum=1) == 1


def multipart_post() -> MultiDict:
    body = (
        b"--x\r\n"
        b'Content-Disposition: form-data; name="name"\r\n\r\nOak\r\n'
        b"--x\r\n"
        b'Content-Disposition: form-data; name="ids"\r\n\r\na\r\n'
        b"--x\r\n"
        b'Content-Disposition: form-data; name="ids"; filename="b.txt"\r\n'
        b"Content-Type: text/plain\r\n\r\nb\r\n"
        b"--x\r\n"
        b'Content-Disposition: form-data; name="file"; filename="f.txt"\r\n'
        b"Content-Type: text/plain\r\n\r\nf\r\n"
        b"--x--\r\n"
    )
    request = Request.blank(
        "/",
        method="POST",
        content_type="multipart/form-data; boundary=x",
        body=body,
    )
    return request.POST


class TestFormText:
    def test_text_and_defaults(self):
        post = multipart_post()
        assert form_text(post, "name") == "Oak"
        assert form_text(post, "absent") == ""
        assert form_text(post, "absent", "x") == "x"

    def test_a_file_is_refused_naming_the_field(self):
        with pytest.raises(InvalidParam) as caught:
            form_text(multipart_post(), "file")
        assert [(e.field, e.message) for e in caught.value.errors] == [
            ("file", "must be text, not a file")
        ]

    def test_every_value_must_be_text(self):
        post = multipart_post()
        assert form_texts(post, "absent") == []
        with pytest.raises(InvalidParam, match="^ids: must be text"):
            form_texts(post, "ids")
        post = MultiDict([("ids", "a"), ("ids", "b")])
        assert form_texts(post, "ids") == ["a", "b"]
