"""stethoscope-user: accounts from the console, on SQLite and PostgreSQL."""

import datetime
import io

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from stethoscope.accounts.models import Role, User, UserToken
from stethoscope.accounts.passwords import Passwords
from stethoscope.audit.models import AuditEvent
from stethoscope.bearer import hash_token
from stethoscope.db import utcnow
from stethoscope.scripts import users
from stethoscope.scripts._console import application, when
from tests.conftest import PASSWORD, count, login
from tests.functional.conftest import CONSOLE_INI


def stdin(monkeypatch, text):
    monkeypatch.setattr("sys.stdin", io.StringIO(text))


class Terminal(io.StringIO):
    def isatty(self):
        return True


def prompts(monkeypatch, *answers):
    """Answer getpass prompts in turn, as at a terminal."""
    monkeypatch.setattr("sys.stdin", Terminal())
    answers = iter(answers)
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))


def user(db, username) -> User | None:
    db.rollback()  # see what the script committed
    return db.scalar(select(User).where(User.username == username))


def events(db) -> list[tuple]:
    db.rollback()
    return [
        (e.action, e.actor, e.actor_type, e.target, e.ip, e.details)
        for e in db.scalars(select(AuditEvent).order_by(AuditEvent.id))
    ]


def verifies(db, username, password) -> bool:
    return Passwords("cheapest").verify(user(db, username).password_hash, password)


def test_add_with_the_password_on_stdin(ini, db, monkeypatch, capsys):
    stdin(monkeypatch, PASSWORD + "\n")
    assert users.main([ini, "add", "Alice", "--role", "staff", "--password-stdin"]) == 0
    assert capsys.readouterr().out == "added alice (staff)\n"
    alice = user(db, "alice")
    assert alice.role == Role.STAFF and not alice.disabled
    assert verifies(db, "alice", PASSWORD)
    assert events(db) == [
        ("user.create", "console:matron", "console", "alice", None, {"role": "staff"})
    ]


def test_add_asks_twice_at_a_terminal(ini, db, monkeypatch):
    prompts(monkeypatch, PASSWORD, PASSWORD)
    assert users.main([ini, "add", "bob", "--role", "viewer"]) == 0
    assert verifies(db, "bob", PASSWORD)


def test_add_refuses_two_different_passwords(ini, db, monkeypatch, capsys):
    prompts(monkeypatch, PASSWORD, PASSWORD + "!")
    assert users.main([ini, "add", "bob", "--role", "viewer"]) == 2
    assert "differ" in capsys.readouterr().err
    assert count(db, User) == 0 and count(db, AuditEvent) == 0


def test_a_too_short_password_is_refused_before_it_is_repeated(
    ini, db, monkeypatch, capsys
):
    prompts(monkeypatch, "short")  # a second prompt would raise StopIteration
    assert users.main([ini, "add", "bob", "--role", "viewer"]) == 2
    assert "at least 10 characters" in capsys.readouterr().err
    assert count(db, User) == 0


def test_add_without_a_terminal_needs_password_stdin(ini, db, monkeypatch, capsys):
    stdin(monkeypatch, PASSWORD + "\n")
    assert users.main([ini, "add", "bob", "--role", "viewer"]) == 2
    assert "--password-stdin" in capsys.readouterr().err
    assert count(db, User) == 0


@pytest.mark.parametrize(
    "option", [["--password", PASSWORD], [f"--password={PASSWORD}"]]
)
def test_a_password_is_never_an_argument(ini, db, option, capsys):
    with pytest.raises(SystemExit) as excinfo:
        users.main([ini, "add", "bob", "--role", "viewer", *option])
    assert excinfo.value.code == 2
    assert "never taken as an argument" in capsys.readouterr().err
    assert count(db, User) == 0


@pytest.mark.parametrize(
    ("argv", "text", "message"),
    [
        (["add", "bob", "--role", "viewer"], "short\n", "at least 10 characters"),
        (["add", "x", "--role", "viewer"], PASSWORD + "\n", "username: 2 to 64"),
        (["add", "admin", "--role", "viewer"], PASSWORD + "\n", "'admin' is taken"),
        (["add", "bob", "--role", "viewer"], "", "no password on standard input"),
        (["passwd", "nobody"], PASSWORD + "\n", "no user 'nobody'"),
        (["passwd", "admin"], "short\n", "at least 10 characters"),
        (["role", "nobody", "staff"], "", "no user 'nobody'"),
        (["role", "admin", "staff"], "", "last enabled admin"),
        (["disable", "admin"], "", "last enabled admin"),
        (["enable", "nobody"], "", "no user 'nobody'"),
    ],
)
def test_errors_exit_2_and_write_nothing(
    ini, db, create_user, monkeypatch, capsys, argv, text, message
):
    create_user("admin", "admin")
    before = db.scalar(select(User.password_hash).where(User.username == "admin"))
    stdin(monkeypatch, text)
    if argv[0] in {"add", "passwd"}:
        argv = [*argv, "--password-stdin"]
    assert users.main([ini, *argv]) == 2
    captured = capsys.readouterr()
    assert message in captured.err and captured.out == ""
    admin = user(db, "admin")
    assert (admin.role, admin.disabled) == (Role.ADMIN, False)
    assert admin.password_hash == before
    assert count(db, User) == 1 and count(db, AuditEvent) == 0


def test_a_failed_audit_write_undoes_the_change(ini, db, monkeypatch):
    def fail(*args, **kwargs):
        raise RuntimeError("audit log unavailable")

    monkeypatch.setattr("stethoscope.audit.services.AuditService.record", fail)
    stdin(monkeypatch, PASSWORD + "\n")
    with pytest.raises(RuntimeError):
        users.main([ini, "add", "bob", "--role", "viewer", "--password-stdin"])
    assert count(db, User) == 0


def test_passwd(ini, db, create_user, monkeypatch, capsys):
    create_user("carol", "staff")
    stdin(monkeypatch, "a new password of hers\n")
    assert users.main([ini, "passwd", "carol", "--password-stdin"]) == 0
    assert "changed the password of carol" in capsys.readouterr().out
    assert verifies(db, "carol", "a new password of hers")
    assert events(db) == [
        ("user.password", "console:matron", "console", "carol", None, None)
    ]


def test_role(ini, db, create_user, capsys):
    create_user("carol", "viewer")
    assert users.main([ini, "role", "carol", "admin"]) == 0
    assert capsys.readouterr().out == "carol is now admin (was viewer)\n"
    assert user(db, "carol").role == Role.ADMIN
    assert users.main([ini, "role", "carol", "admin"]) == 0
    assert "already admin" in capsys.readouterr().out
    assert events(db) == [
        (
            "user.role",
            "console:matron",
            "console",
            "carol",
            None,
            {"from": "viewer", "to": "admin"},
        )
    ]


def test_role_must_be_a_role(ini, create_user, capsys):
    create_user("carol", "viewer")
    with pytest.raises(SystemExit) as excinfo:
        users.main([ini, "role", "carol", "boss"])
    assert excinfo.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_disable_and_enable(ini, db, create_user, capsys):
    create_user("admin", "admin")
    create_user("carol", "staff")
    assert users.main([ini, "disable", "carol"]) == 0
    assert user(db, "carol").disabled
    assert users.main([ini, "disable", "carol"]) == 0
    assert users.main([ini, "enable", "carol"]) == 0
    assert not user(db, "carol").disabled
    assert capsys.readouterr().out == (
        "carol is disabled\n"
        "carol is already disabled; nothing changed\n"
        "carol is enabled\n"
    )
    assert [event[0] for event in events(db)] == ["user.disable", "user.enable"]


def test_list(ini, create_user, make_app, capsys):
    create_user("carol", "staff")
    create_user("admin", "admin")
    create_user("zed", "viewer")
    users.main([ini, "disable", "zed"])
    # A login through the web app sets last login.
    login(make_app(), "carol", PASSWORD)
    capsys.readouterr()
    assert users.main([ini, "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["username", "role", "enabled", "last", "login"]
    assert lines[1].split() == ["admin", "admin", "yes", "never"]
    assert lines[2].split()[:3] == ["carol", "staff", "yes"]
    assert lines[2].endswith(" UTC")
    assert lines[3].split() == ["zed", "viewer", "no", "never"]


def test_list_with_no_users(ini, capsys):
    assert users.main([ini, "list"]) == 0
    assert "no users yet" in capsys.readouterr().out


class TestBootstrap:
    def test_creates_one_admin_once(self, ini, db, make_app, capsys):
        assert users.main([ini, "bootstrap"]) == 0
        out = capsys.readouterr().out
        password = next(
            line.split()[1] for line in out.splitlines() if "password  " in line
        )
        assert len(password) == 16  # token_urlsafe(12)
        assert "http://localhost:6543/login" in out
        assert f"{ini} passwd admin" in out
        admin = user(db, "admin")
        assert admin.role == Role.ADMIN and not admin.disabled
        assert events(db) == [
            (
                "user.create",
                "console:matron",
                "console",
                "admin",
                None,
                {"role": "admin"},
            )
        ]

        # The password printed is the one that logs in.
        login(make_app(), "admin", password)

        assert users.main([ini, "bootstrap"]) == 0
        out = capsys.readouterr().out
        assert password not in out
        assert out.count("\n") == 1 and "passwd USERNAME" in out
        assert count(db, User) == 1
        assert count(db, AuditEvent) == 2  # + the login

    def test_does_nothing_when_any_user_exists(self, ini, db, create_user, capsys):
        create_user("carol", "viewer")
        assert users.main([ini, "bootstrap"]) == 0
        assert "1 user(s)" in capsys.readouterr().out
        assert user(db, "admin") is None and count(db, AuditEvent) == 0


def test_the_console_writes_in_an_immediate_transaction(ini, db_url):
    with application(ini, write=True) as env:
        options = env["request"].db.get_bind().get_execution_options()
    if db_url.startswith("sqlite"):
        assert options["sqlite_begin"] == "IMMEDIATE"
    with application(ini, write=False) as env:
        options = env["request"].db.get_bind().get_execution_options()
    assert "sqlite_begin" not in options


@pytest.mark.parametrize(
    ("contents", "message"),
    [
        (None, "No such file"),
        ("[app:other]\nuse = egg:stethoscope\n", "No section 'main'"),
        (
            "[app:main]\nuse = egg:stethoscope\nsqlalchemy.url = sqlite:///x.sqlite\n",
            "secret",
        ),
        ("not an ini file", "cannot load"),
    ],
)
def test_a_bad_ini_exits_2(tmp_path, monkeypatch, capsys, contents, message):
    for name in ("DATABASE_URL", "STETHOSCOPE_SECRET"):
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "bad.ini"
    if contents is not None:
        path.write_text(contents)
    assert users.main([str(path), "list"]) == 2
    assert message in capsys.readouterr().err


def test_an_unmigrated_database_exits_2(tmp_path, monkeypatch, capsys):
    for name in ("DATABASE_URL", "STETHOSCOPE_SECRET"):
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "empty.ini"
    path.write_text(
        CONSOLE_INI.format(url=f"sqlite:///{tmp_path}/empty.sqlite", models=tmp_path)
    )
    assert users.main([str(path), "list"]) == 2
    assert "initialize_stethoscope_db" in capsys.readouterr().err


def test_the_environment_overrides_the_ini(ini, db_url, tmp_path, monkeypatch, capsys):
    other = tmp_path / "other.ini"
    other.write_text(
        CONSOLE_INI.format(url="sqlite:///nowhere/at/all", models=tmp_path)
    )
    monkeypatch.setenv("DATABASE_URL", db_url)
    assert users.main([str(other), "bootstrap"]) == 0
    assert "Created the first account" in capsys.readouterr().out


class TestTokens:
    """stethoscope-user INI token create|list|revoke: users' API tokens."""

    @staticmethod
    def created(out: str) -> tuple[int, str]:
        """The id and the token a ``token create`` printed."""
        token_id = int(out.split()[2])
        token = next(line.split()[-1] for line in out.splitlines() if "stu_" in line)
        return token_id, token

    def test_create_prints_the_token_once_and_it_works(
        self, ini, db, create_user, make_app, capsys
    ):
        create_user("nurse-call", "viewer")
        assert users.main([ini, "token", "create", "nurse-call"]) == 0
        out = capsys.readouterr().out
        token_id, token = self.created(out)
        assert "acting as viewer; never expires" in out
        assert f"Authorization: Bearer {token}" in out
        row = db.get(UserToken, token_id)
        assert row.token_hash == hash_token(token) and row.expires_at is None
        assert row.created_by == "console:matron"
        assert events(db) == [
            (
                "user_token.create",
                "console:matron",
                "console",
                "nurse-call",
                None,
                {
                    "token_id": token_id,
                    "prefix": row.prefix,
                    "expires_at": None,
                    "role": "viewer",
                },
            )
        ]
        headers = {"Authorization": f"Bearer {token}"}
        make_app().get("/gateways", headers=headers, status=200)

    def test_create_with_an_expiry(self, ini, db, create_user, capsys):
        create_user("nurse-call", "staff")
        assert users.main([ini, "token", "create", "nurse-call", "--expires", "7"]) == 0
        out = capsys.readouterr().out
        token_id, _ = self.created(out)
        expires_at = db.get(UserToken, token_id).expires_at
        assert datetime.timedelta(days=6) < expires_at - utcnow()
        assert expires_at - utcnow() <= datetime.timedelta(days=7)
        assert f"expires {when(expires_at)}" in out

    def test_list_and_revoke(self, ini, db, create_user, make_app, capsys):
        create_user("nurse-call", "viewer")
        create_user("care-records", "staff")
        users.main([ini, "token", "create", "nurse-call"])
        first, token = self.created(capsys.readouterr().out)
        users.main([ini, "token", "create", "care-records", "--expires", "30"])
        second, _ = self.created(capsys.readouterr().out)

        assert users.main([ini, "token", "list"]) == 0
        lines = capsys.readouterr().out.splitlines()
        assert lines[0].split() == [
            "id",
            "user",
            "prefix",
            "created",
            "expires",
            "last",
            "used",
            "state",
        ]
        # By username, then id; never the token itself.
        assert [line.split()[:2] for line in lines[1:]] == [
            [str(second), "care-records"],
            [str(first), "nurse-call"],
        ]
        assert all(line.endswith("live") for line in lines[1:])
        assert token not in "\n".join(lines)

        assert users.main([ini, "token", "list", "nurse-call"]) == 0
        lines = capsys.readouterr().out.splitlines()
        assert [line.split()[0] for line in lines[1:]] == [str(first)]

        assert users.main([ini, "token", "revoke", str(first)]) == 0
        assert capsys.readouterr().out.startswith(f"revoked token {first} (stu_")
        headers = {"Authorization": f"Bearer {token}"}
        make_app().get("/gateways", headers=headers, status=401)
        assert users.main([ini, "token", "revoke", str(first)]) == 0
        assert "was revoked already" in capsys.readouterr().out
        assert [event[0] for event in events(db)] == [
            "user_token.create",
            "user_token.create",
            "user_token.revoke",
        ]
        users.main([ini, "token", "list", "nurse-call"])
        assert capsys.readouterr().out.splitlines()[1].endswith("revoked")

    def test_list_with_no_tokens(self, ini, create_user, capsys):
        create_user("nurse-call", "viewer")
        assert users.main([ini, "token", "list", "nurse-call"]) == 0
        assert capsys.readouterr().out == "no tokens of nurse-call\n"

    @pytest.mark.parametrize(
        ("argv", "message"),
        [
            (["create", "nobody"], "no user 'nobody'"),
            (["create", "zed"], "zed is disabled"),
            (["list", "nobody"], "no user 'nobody'"),
            (["revoke", "999"], "no user token 999"),
        ],
    )
    def test_errors_exit_2_and_write_nothing(
        self, ini, db, create_user, capsys, argv, message
    ):
        create_user("zed", "viewer")
        with Session(db.get_bind()) as session, session.begin():
            session.execute(update(User).values(disabled=True))
        assert users.main([ini, "token", *argv]) == 2
        captured = capsys.readouterr()
        assert message in captured.err and captured.out == ""
        assert count(db, UserToken) == 0 and count(db, AuditEvent) == 0

    @pytest.mark.parametrize(
        ("argv", "message"),
        [
            (["create", "zed", "--expires", "0"], "days from 1 to 3650"),
            (["create", "zed", "--expires", "3651"], "days from 1 to 3650"),
            (["create", "zed", "--expires", "soon"], "days from 1 to 3650"),
            (["revoke", "x"], "a token id"),
            (["revoke", "9" * 30], "a token id"),
        ],
    )
    def test_bad_arguments_exit_2(self, ini, db, create_user, capsys, argv, message):
        create_user("zed", "viewer")
        with pytest.raises(SystemExit) as excinfo:
            users.main([ini, "token", *argv])
        assert excinfo.value.code == 2
        assert message in capsys.readouterr().err
        assert count(db, UserToken) == 0
