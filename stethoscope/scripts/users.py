"""stethoscope-user INI COMMAND: add, change and list staff accounts, and
their API tokens (token create|list|revoke).

Every change is made through UserService or UserTokenService and recorded in
the audit log (as console:<your login name>) in the same transaction. A
password is typed at a prompt, or piped in with --password-stdin; never
given as an argument, where shell history and ps would keep it. A token is
printed once, when it is created; the database keeps only its sha256.
"""

import argparse
import getpass
import secrets
import sys

from ..accounts.models import Role
from ..accounts.passwords import Passwords
from ..accounts.services import UserService
from ..accounts.tokens import MAX_EXPIRY_DAYS, UserTokenService
from ..db import utcnow
from ..ops.params import parse_id
from ._console import (
    ConsoleError,
    actor,
    command,
    console,
    invoked_as,
    table,
    when,
)

PROG = "stethoscope-user"
FIRST_ADMIN = "admin"
SITE_URL = "http://localhost:6543"  # development.ini's listen
ROLES = [role.value for role in Role]
MAX_TOKEN_ID = 2**31 - 1


def read_password(from_stdin: bool) -> str:
    """The new password: one line of stdin, or typed twice at a prompt."""
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise ConsoleError("no password on standard input")
        return password
    if not sys.stdin.isatty():
        raise ConsoleError(
            "no terminal to ask for the password on: pipe it in with --password-stdin"
        )
    password = getpass.getpass("New password: ")
    problem = Passwords.problem(password)
    if problem:
        raise ConsoleError(f"password: {problem}")
    if getpass.getpass("Repeat it: ") != password:
        raise ConsoleError("the two passwords differ; nothing changed")
    return password


def _users(request) -> UserService:
    return request.find_service(UserService)


def add(request, args) -> None:
    """add a user"""
    password = read_password(args.password_stdin)
    with request.tm:
        user = _users(request).create(args.username, password, args.role)
    print(f"added {user.username} ({user.role.value})")


def passwd(request, args) -> None:
    """set a user's password"""
    users = _users(request)
    with request.tm:
        # Checked before asking, so that a typo in the name costs no typing.
        users.require(args.username)
    password = read_password(args.password_stdin)
    with request.tm:
        user = users.require(args.username)
        users.set_password(user, password)
    print(f"changed the password of {user.username}; their sessions are ended")


def role(request, args) -> None:
    """change a user's role"""
    with request.tm:
        users = _users(request)
        user = users.require(args.username)
        before = user.role
        changed = users.set_role(user, args.role)
    if not changed:
        print(f"{user.username} is already {before.value}; nothing changed")
    else:
        print(f"{user.username} is now {user.role.value} (was {before.value})")


def _set_disabled(request, username: str, disabled: bool) -> None:
    state = "disabled" if disabled else "enabled"
    with request.tm:
        users = _users(request)
        user = users.require(username)
        changed = users.set_disabled(user, disabled)
    if changed:
        print(f"{user.username} is {state}")
    else:
        print(f"{user.username} is already {state}; nothing changed")


def disable(request, args) -> None:
    """stop a user logging in"""
    _set_disabled(request, args.username, True)


def enable(request, args) -> None:
    """let a disabled user log in again"""
    _set_disabled(request, args.username, False)


def list_users(request, args) -> None:
    """list users: role, enabled, last login"""
    with request.tm:
        users = _users(request).list()
    if not users:
        print(f"no users yet: {invoked_as(PROG)} {args.config_uri} bootstrap")
        return
    rows = [
        (
            user.username,
            user.role.value,
            "no" if user.disabled else "yes",
            when(user.last_login_at, never="never"),
        )
        for user in users
    ]
    print(table(("username", "role", "enabled", "last login"), rows))


def bootstrap_admin(request, args) -> None:
    """create the first admin (random password, shown once) if there are
    no users; make run does this

    With users already there it only reminds how to add one.
    """
    password = secrets.token_urlsafe(12)
    with request.tm:
        users = _users(request)
        existing = len(users.list())
        if not existing:
            users.create(FIRST_ADMIN, password, Role.ADMIN)
    command = f"{invoked_as(PROG)} {args.config_uri}"
    if existing:
        print(
            f"{existing} user(s); to set a forgotten password: "
            f"{command} passwd USERNAME"
        )
        return
    # Printed only after the commit: a password shown must be one that works.
    print(
        "\n"
        "Created the first account, an admin. Its password is shown only now:\n"
        "\n"
        f"    username  {FIRST_ADMIN}\n"
        f"    password  {password}\n"
        "\n"
        f"Log in at {args.url.rstrip('/')}/login and then choose a password of\n"
        f"your own: {command} passwd {FIRST_ADMIN}\n"
    )


def _tokens(request) -> UserTokenService:
    return request.find_service(UserTokenService)


def create_token(request, args) -> None:
    """create a token for a user and print it, once"""
    with request.tm:
        user = _users(request).require(args.username)
        token, row = _tokens(request).create(user, actor(), expires_days=args.expires)
        role = user.role.value
    expires = f"expires {when(row.expires_at)}" if row.expires_at else "never expires"
    # Printed only after the commit: a token shown must be one that works.
    print(
        f"created token {row.id} for {args.username} (acting as {role}; "
        f"{expires}); it is shown only now (the database keeps its hash):\n"
        "\n"
        f"    {token}\n"
        "\n"
        "Send it with every request, in this header:\n"
        "\n"
        f"    Authorization: Bearer {token}"
    )


def list_tokens(request, args) -> None:
    """list tokens (never the token itself)"""
    with request.tm:
        user = None
        if args.username:
            user = _users(request).require(args.username)
        rows = _tokens(request).list(user)
        now = utcnow()
        lines = [
            (
                row.id,
                row.user.username,
                row.prefix + "…",
                f"{when(row.created_at)} by {row.created_by}",
                when(row.expires_at, never="never"),
                when(row.last_used_at, never="never"),
                row.state(now),
            )
            for row in rows
        ]
    print(
        table(
            ("id", "user", "prefix", "created", "expires", "last used", "state"),
            lines,
            empty=f"no tokens{f' of {args.username}' if args.username else ''}",
        )
    )


def revoke_token(request, args) -> None:
    """revoke a token (by its id)"""
    with request.tm:
        row, revoked = _tokens(request).revoke(args.token_id, actor())
        username = row.user.username
    if revoked:
        print(f"revoked token {row.id} ({row.prefix}…) of {username}")
    else:
        print(
            f"token {row.id} ({row.prefix}…) of {username} was revoked already, "
            f"{when(row.revoked_at)} by {row.revoked_by}"
        )


def _days(text: str) -> int:
    days = parse_id(text, MAX_EXPIRY_DAYS, minimum=1)
    if days is None:
        raise argparse.ArgumentTypeError(
            f"a whole number of days from 1 to {MAX_EXPIRY_DAYS}"
        )
    return days


def _token_id(text: str) -> int:
    # user_tokens.id is an INTEGER: a larger id cannot exist, and PostgreSQL
    # would refuse to look for one with an error rather than find nothing.
    token_id = parse_id(text, MAX_TOKEN_ID)
    if token_id is None:
        raise argparse.ArgumentTypeError("a token id, as token list shows it")
    return token_id


def _token_commands(commands) -> None:
    token = commands.add_parser(
        "token",
        help="API tokens: other systems acting as a user",
        allow_abbrev=False,
    )
    actions = token.add_subparsers(
        dest="token_command", required=True, metavar="ACTION"
    )

    new = command(actions, "create", create_token, write=True)
    new.add_argument("username")
    new.add_argument(
        "--expires",
        type=_days,
        metavar="DAYS",
        help="refuse the token after this many days (default: never)",
    )
    listed = command(actions, "list", list_tokens, write=False)
    listed.add_argument("username", nargs="?", help="only this user's")
    old = command(actions, "revoke", revoke_token, write=True)
    old.add_argument("token_id", type=_token_id)


class _RefusePassword(argparse.Action):
    def __call__(self, parser, namespace, values, option_string=None):
        parser.error(
            "a password is never taken as an argument (shell history and ps "
            "would keep it): type it at the prompt, or pipe it in with "
            "--password-stdin"
        )


def _password_options(parser) -> None:
    parser.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from one line of standard input",
    )
    parser.add_argument(
        "--password", nargs="?", action=_RefusePassword, help=argparse.SUPPRESS
    )


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__, allow_abbrev=False)
    parser.add_argument("config_uri", help="the ini file, e.g. development.ini")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    added = command(commands, "add", add, write=True)
    added.add_argument("username")
    added.add_argument("--role", required=True, choices=ROLES)
    _password_options(added)
    password = command(commands, "passwd", passwd, write=True)
    password.add_argument("username")
    _password_options(password)
    changed = command(commands, "role", role, write=True)
    changed.add_argument("username")
    changed.add_argument("role", choices=ROLES)
    for name, run in (("disable", disable), ("enable", enable)):
        command(commands, name, run, write=True).add_argument("username")
    command(commands, "list", list_users, write=False)
    first = command(commands, "bootstrap", bootstrap_admin, write=True)
    first.add_argument(
        "--url",
        default=SITE_URL,
        help="where the site is served (default: %(default)s)",
    )

    _token_commands(commands)
    return parser


main = console(parser)


if __name__ == "__main__":
    sys.exit(main())
