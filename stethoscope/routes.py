"""A feature's routes, added from a table of name → pattern."""

from collections.abc import Mapping


def add_routes(config, routes: Mapping[str, str]) -> None:
    """Add each route in ``routes`` (name → pattern) in the table's order.

    Pyramid tries routes in the order they were added, so a table lists a
    pattern before any other that would also match its paths.
    """
    for name, pattern in routes.items():
        config.add_route(name, pattern)
