"""The one family of errors a request can end in, below every feature.

Services and views raise these; ``stethoscope.ops.errors`` renders each as
one JSON body (``{"status", "error", "message"}``, plus ``errors`` naming the
fields of a 400) for machines, or as the error page for a browser. No view
builds an error body itself, so every error of the API has one shape and the
OpenAPI document describes it once (``Error``).

Status codes are instructions to gateways (they retry 5xx and 429, drop
other 4xx): a service picks the class by what the client should do next.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from pyramid.httpexceptions import status_map


def status_name(status: int) -> str:
    """A status as an error body names it: ``not_found``, ``conflict``,
    ``request_entity_too_large`` (Pyramid's title of it, in snake case)."""
    return status_map[status].title.lower().replace(" ", "_").replace("-", "_")


@dataclass(frozen=True)
class FieldError:
    """What is wrong with one field. ``field`` is a dotted path (``beacons.b1``,
    ``3.observed_at`` in a batch) or ``body`` for the body as a whole."""

    field: str
    message: str

    def as_json(self) -> dict:
        return {"field": self.field, "message": self.message}


class ServiceError(Exception):
    """A request refused for a reason the client can act on."""

    status: ClassVar[int] = 400
    # The status as a name in the body: a client switches on it. A class
    # that sets its status and no error of its own gets the status's name.
    error: ClassVar[str] = status_name(400)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "status" in cls.__dict__ and "error" not in cls.__dict__:
            cls.error = status_name(cls.status)

    def __init__(
        self,
        message: str,
        *,
        headers: Mapping[str, str] | None = None,
        details: Mapping[str, Any] | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.headers = dict(headers or {})
        # More members of the body (e.g. the run a conflict is with).
        self.details = dict(details or {})

    def as_json(self) -> dict:
        return {
            "status": self.status,
            "error": self.error,
            "message": self.message,
            **self.details,
        }


class Invalid(ServiceError):
    """400: the body, a parameter or a form field can never be right as sent."""

    status = 400
    error = "invalid"

    def __init__(self, errors: Iterable[FieldError], **kwargs):
        self.errors = list(errors)
        super().__init__(
            "; ".join(f"{error.field}: {error.message}" for error in self.errors),
            **kwargs,
        )

    @property
    def field(self) -> str:
        """The first field at fault (most errors name one)."""
        return self.errors[0].field

    def as_json(self) -> dict:
        return {**super().as_json(), "errors": [e.as_json() for e in self.errors]}


class ValidationError(Invalid):
    """400 naming one field: ``ValidationError("room_id", "no such room")``."""

    def __init__(self, field: str, message: str, **kwargs):
        super().__init__([FieldError(field, message)], **kwargs)


class Refused(ServiceError):
    """403: understood and allowed in general, but not this (a token of another
    gateway, the last admin's role)."""

    status = 403


class NotFound(ServiceError):
    status = 404


class Conflict(ServiceError):
    """409: the request clashes with what is stored (an id in use, an open
    run); ``details`` may say with what."""

    status = 409


class TooLarge(ServiceError):
    status = 413


class UnsupportedMediaType(ServiceError):
    status = 415


class Unavailable(ServiceError):
    """503 with Retry-After: a part we depend on is down; retrying later is
    the right thing to do."""

    status = 503

    def __init__(self, message: str, *, retry_after: int, **kwargs):
        headers = {"Retry-After": str(retry_after), **kwargs.pop("headers", {})}
        super().__init__(message, headers=headers, **kwargs)
