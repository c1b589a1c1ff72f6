"""What the admin console scripts share: the app, the actor, errors, tables."""

import argparse
import configparser
import datetime
import getpass
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from pyramid.paster import bootstrap
from sqlalchemy.exc import SQLAlchemyError

from ..accounts.services import AccountError
from ..audit.services import CONSOLE_ACTOR, record
from ..config import ConfigurationError
from ..errors import ServiceError
from ..singletons import DATABASE

# argparse exits with 2 on a usage error; the scripts use it for every error.
EXIT_ERROR = 2


class ConsoleError(Exception):
    """A command that cannot be carried out; the message is for the operator."""


def actor() -> str:
    """Who is making a change from the console, as the audit log names them."""
    try:
        name = getpass.getuser()
    except (KeyError, OSError):  # no login name and no passwd entry
        name = f"uid{os.getuid()}"
    return f"console:{name}"


@contextmanager
def application(config_uri: str, *, write: bool) -> Iterator:
    """The app built from ``config_uri`` and a request to work in.

    ``bootstrap`` builds the whole app, so settings come from the ini file
    with the same environment overrides as the server. Its request is a GET;
    ``write`` makes it a POST so that ``request.db`` is a write session,
    which on SQLite begins IMMEDIATE: a read-then-write transaction that
    began deferred would fail at once if the server wrote in between. (A
    request given to ``bootstrap`` would need to be of the app's own request
    class, which carries ``request.db``; it is only known once the app is.)
    """
    try:
        env = bootstrap(config_uri)
    except (
        OSError,
        LookupError,
        ValueError,
        configparser.Error,
        ConfigurationError,
    ) as exc:
        raise ConsoleError(f"cannot load {config_uri}: {exc}") from None
    if write:
        env["request"].method = "POST"
    # The app's services (request.find_service) record what they change as
    # done by the console user.
    env["request"].environ[CONSOLE_ACTOR] = actor()
    try:
        yield env
    finally:
        env["closer"]()
        env["registry"][DATABASE].dispose()


def argument_parser(prog: str, doc: str) -> argparse.ArgumentParser:
    """A script's parser: its module docstring as the help, kept as written,
    and no abbreviated options (a typo must not pick another option)."""
    return argparse.ArgumentParser(
        prog=prog,
        description=doc,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )


def audit(request, action: str, *, target: str, details: dict | None = None):
    """Record ``action`` by the console user, in the request's transaction
    (a write request's: every command that changes anything)."""
    return record(request, action, target=target, details=details)


def command(
    commands, name: str, run: Callable, *, write: bool | None
) -> argparse.ArgumentParser:
    """A subcommand's parser (no abbreviated options either) that
    ``dispatch`` runs as ``run`` (see there for ``write``); the first
    paragraph of ``run``'s docstring is its help."""
    help = " ".join(run.__doc__.strip().split("\n\n")[0].split())
    parser = commands.add_parser(name, help=help, allow_abbrev=False)
    parser.set_defaults(run=run, write=write)
    return parser


def dispatch(parser: argparse.ArgumentParser, argv=None) -> int:
    """Parse ``argv`` and run the command it names: the exit status.

    The parser (or the subcommand's) sets ``run`` and ``write``: with
    ``write`` True or False, ``run(request, args)`` in a write or a
    read-only request of the app ``config_uri`` names (see ``run``); with
    None, ``run(args)`` alone, returning the exit status (a command that
    needs no database). ``check(args)``, when set, is a usage error or None.
    """
    args = parser.parse_args(argv)
    problem = args.check(args) if hasattr(args, "check") else None
    if problem is not None:
        parser.error(problem)
    if args.write is None:
        try:
            return args.run(args)
        except ConsoleError as exc:
            return _error(exc)
    return run(args.config_uri, args.run, args, write=args.write)


def console(parser: Callable[[], argparse.ArgumentParser]) -> Callable[..., int]:
    """A script's ``main(argv=None)``: ``dispatch`` with its ``parser()``."""

    def main(argv=None) -> int:
        return dispatch(parser(), argv)

    return main


def _error(message) -> int:
    print(f"error: {message}", file=sys.stderr)
    return EXIT_ERROR


def run(config_uri: str, command: Callable, args, *, write: bool) -> int:
    """Run ``command(request, args)``: 0, or 2 with a message on stderr.

    A command makes its changes inside ``with request.tm:``, so an error
    leaves nothing written, the audit event included.
    """
    try:
        with application(config_uri, write=write) as env:
            command(env["request"], args)
    except (ConsoleError, AccountError, ServiceError) as exc:
        return _error(exc)
    except SQLAlchemyError as exc:
        cause = getattr(exc, "orig", None) or exc
        return _error(
            f"database: {cause}\n(is the database up, and migrated with "
            f"initialize_stethoscope_db {config_uri}?)"
        )
    return 0


def invoked_as(name: str) -> str:
    """How the operator ran this script (e.g. .venv/bin/stethoscope-user),
    so that a hint they are given can be pasted as it is."""
    if os.path.basename(sys.argv[0] or "") == name:
        return sys.argv[0]
    return name


def when(moment: datetime.datetime | None, never: str = "-") -> str:
    if moment is None:
        return never
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")


def table(
    headers: Sequence[str], rows: Sequence[Sequence[object]], *, empty: str = ""
) -> str:
    """Left-aligned columns, two spaces apart, under their headers; ``empty``
    (what there is none of) when there are no rows and it is given."""
    if empty and not rows:
        return empty
    cells = [[str(cell) for cell in row] for row in [headers, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return "\n".join(
        "  ".join(
            cell.ljust(width) for cell, width in zip(row, widths, strict=True)
        ).rstrip()
        for row in cells
    )
