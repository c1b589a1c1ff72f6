"""What the pages' forms share: a refusal writes nothing and says why."""

import pytest
import transaction
from pyramid import testing

from stethoscope.errors import Conflict, FieldError, Invalid, ValidationError
from stethoscope.forms import actor, reason, redirect, refuse, refuse_and_flash


@pytest.fixture
def config():
    config = testing.setUp()
    config.add_route("admin.user", "/admin/users/{username}")
    yield config
    testing.tearDown()


@pytest.fixture
def request_(config):
    request = testing.DummyRequest()
    request.tm = transaction.TransactionManager(explicit=True)
    request.tm.begin()
    yield request
    request.tm.abort()


def test_refuse_dooms_the_transaction_and_answers_the_status(request_):
    refuse(request_, 409)

    assert request_.tm.isDoomed()
    assert request_.response.status_int == 409


def test_refuse_answers_400_unless_told(request_):
    refuse(request_)

    assert request_.response.status_int == 400


def test_refuse_and_flash_dooms_and_says_why_in_the_queue_given(request_):
    refuse_and_flash(request_, "Nothing changed: no.", queue="error")

    assert request_.tm.isDoomed()
    assert request_.session.pop_flash("error") == ["Nothing changed: no."]
    assert request_.session.pop_flash() == []


@pytest.mark.parametrize(
    ("error", "shown"),
    [
        (ValidationError("room_id", "no room 'attic'"), "no room 'attic'"),
        (
            Invalid([FieldError("a", "first"), FieldError("b", "second")]),
            "first",
        ),
        (
            Conflict("badge b1 already has an open run"),
            "badge b1 already has an open run",
        ),
    ],
)
def test_reason_is_the_complaint_without_the_field(error, shown):
    assert reason(error) == shown


def test_redirect_is_see_other_to_the_route(request_):
    response = redirect(request_, "admin.user", username="ann")

    assert response.status_int == 303
    assert response.location == "http://example.com/admin/users/ann"


def test_actor_is_the_user_or_a_dash(config, request_):
    assert actor(request_) == "-"
    config.testing_securitypolicy(userid="ann")

    assert actor(request_) == "ann"
