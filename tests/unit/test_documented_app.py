"""tests.support.openapi: the check every functional test's JSON goes through."""

import pytest

from tests.support.openapi import DOCUMENT_KEY, UndocumentedResponse, checker_of


@pytest.fixture
def checker(make_app):
    return checker_of(make_app().app.registry[DOCUMENT_KEY])


def test_a_body_the_document_describes_passes(checker):
    checker.check("GET", "/rooms", 200, {"rooms": []})


def test_a_body_that_breaks_its_schema_fails(checker):
    with pytest.raises(UndocumentedResponse, match="does not match"):
        checker.check("GET", "/rooms", 200, {"rooms": "none"})


def test_a_second_check_of_the_same_operation_fails_alike(checker):
    # Validators are kept per operation: the second use checks as the first.
    checker.check("GET", "/rooms", 200, {"rooms": []})
    with pytest.raises(UndocumentedResponse, match="does not match"):
        checker.check("GET", "/rooms", 200, {"rooms": [{"id": 1}]})


def test_an_undocumented_success_fails(checker):
    with pytest.raises(UndocumentedResponse, match="no such operation"):
        checker.check("GET", "/no-such-thing", 200, {})


def test_apps_serving_one_document_share_its_checker(make_app):
    first, second = make_app().app, make_app().app
    assert first.checker is second.checker
