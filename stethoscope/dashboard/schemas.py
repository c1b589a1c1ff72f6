"""The dashboard pages' query strings (their filter forms)."""

from typing import Any

from pydantic import model_validator

from ..schemas import Identifier, IsoDateTime, Query


class ReadingsFilter(Query):
    """The /readings filter form. A blank field is no filter (a form sends
    every field); since and until without an offset are on the site's clock
    (a datetime-local input sends them so)."""

    badge: Identifier | None = None
    gateway: Identifier | None = None
    since: IsoDateTime | None = None
    until: IsoDateTime | None = None

    @model_validator(mode="before")
    @classmethod
    def _blank_is_absent(cls, values: Any) -> Any:
        if isinstance(values, dict):
            return {
                key: value
                for key, value in values.items()
                if not (isinstance(value, str) and not value.strip())
            }
        return values
