"""stethoscope-user INI COMMAND: add, change and list staff accounts.

Every change is made through UserService and recorded in the audit log (as
console:<your login name>) in the same transaction. A password is typed at a
prompt, or piped in with --password-stdin; never given as an argument, where
shell history and ps would keep it.
"""

import argparse
import getpass
import secrets
import sys

from ..accounts.models import Role
from ..accounts.passwords import Passwords
from ..accounts.services import UserService
from ._console import ConsoleError, audit, invoked_as, run, table, when

PROG = "stethoscope-user"
FIRST_ADMIN = "admin"
SITE_URL = "http://localhost:6543"  # development.ini's listen
ROLES = [role.value for role in Role]


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


def add(request, args) -> None:
    password = read_password(args.password_stdin)
    with request.tm:
        user = request.find_service(UserService).create(
            args.username, password, args.role
        )
        audit(request, "user.create", target=user.username, details={"role": args.role})
    print(f"added {user.username} ({user.role.value})")


def passwd(request, args) -> None:
    users = request.find_service(UserService)
    with request.tm:
        # Checked before asking, so that a typo in the name costs no typing.
        users.require(args.username)
    password = read_password(args.password_stdin)
    with request.tm:
        user = users.require(args.username)
        users.set_password(user, password)
        audit(request, "user.password", target=user.username)
    print(f"changed the password of {user.username}; their sessions are ended")


def role(request, args) -> None:
    with request.tm:
        users = request.find_service(UserService)
        user = users.require(args.username)
        before = user.role
        if before != args.role:
            users.set_role(user, args.role)
            audit(
                request,
                "user.role",
                target=user.username,
                details={"from": before.value, "to": args.role},
            )
    if before == args.role:
        print(f"{user.username} is already {before.value}; nothing changed")
    else:
        print(f"{user.username} is now {user.role.value} (was {before.value})")


def _set_disabled(request, username: str, disabled: bool) -> None:
    state = "disabled" if disabled else "enabled"
    with request.tm:
        users = request.find_service(UserService)
        user = users.require(username)
        changed = user.disabled != disabled
        if changed:
            users.set_disabled(user, disabled)
            audit(
                request,
                "user.disable" if disabled else "user.enable",
                target=user.username,
            )
    if changed:
        print(f"{user.username} is {state}")
    else:
        print(f"{user.username} is already {state}; nothing changed")


def disable(request, args) -> None:
    _set_disabled(request, args.username, True)


def enable(request, args) -> None:
    _set_disabled(request, args.username, False)


def list_users(request, args) -> None:
    with request.tm:
        users = request.find_service(UserService).list()
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
    """The first admin, when there is no user at all; else a reminder."""
    password = secrets.token_urlsafe(12)
    with request.tm:
        users = request.find_service(UserService)
        existing = len(users.list())
        if not existing:
            users.create(FIRST_ADMIN, password, Role.ADMIN)
            audit(request, "user.create", target=FIRST_ADMIN, details={"role": "admin"})
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

    command = commands.add_parser("add", help="add a user", allow_abbrev=False)
    command.add_argument("username")
    command.add_argument("--role", required=True, choices=ROLES)
    _password_options(command)
    command.set_defaults(run=add, write=True)

    command = commands.add_parser(
        "passwd", help="set a user's password", allow_abbrev=False
    )
    command.add_argument("username")
    _password_options(command)
    command.set_defaults(run=passwd, write=True)

    command = commands.add_parser("role", help="change a user's role")
    command.add_argument("username")
    command.add_argument("role", choices=ROLES)
    command.set_defaults(run=role, write=True)

    command = commands.add_parser("disable", help="stop a user logging in")
    command.add_argument("username")
    command.set_defaults(run=disable, write=True)

    command = commands.add_parser("enable", help="let a disabled user log in again")
    command.add_argument("username")
    command.set_defaults(run=enable, write=True)

    command = commands.add_parser("list", help="list users: role, enabled, last login")
    command.set_defaults(run=list_users, write=False)

    command = commands.add_parser(
        "bootstrap",
        help="create the first admin (random password, shown once) if there "
        "are no users; make run does this",
    )
    command.add_argument(
        "--url",
        default=SITE_URL,
        help="where the site is served (default: %(default)s)",
    )
    command.set_defaults(run=bootstrap_admin, write=True)
    return parser


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    return run(args.config_uri, args.run, args, write=args.write)


if __name__ == "__main__":
    sys.exit(main())
