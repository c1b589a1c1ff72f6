"""Shared fixtures: real databases, a real redis-server, the app under webtest.

Every test that touches a database gets a fresh one, copied from a template
migrated once per session: a file copy for SQLite, ``CREATE DATABASE …
TEMPLATE`` for PostgreSQL. Tests that take ``db_url`` run on both.
"""

import itertools
import shutil

import jinja2
import pytest
import webtest
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from stethoscope import main
from stethoscope.accounts.passwords import Passwords
from stethoscope.accounts.services import UserService
from stethoscope.migrations import upgrade_engine
from stethoscope.singletons import DATABASE
from tests.support.openapi import DocumentedApp
from tests.support.services import PostgresServer, RedisServer, private_directory

_database_numbers = itertools.count()


@pytest.fixture(scope="session")
def redis_server():
    server = RedisServer(private_directory("stethoscope-redis-")).start()
    yield server
    server.stop()
    shutil.rmtree(server.directory, ignore_errors=True)


@pytest.fixture
def redis_url(redis_server):
    client = redis_server.client()
    client.flushall()
    client.close()
    return redis_server.url


@pytest.fixture(scope="session")
def postgres_server():
    server = PostgresServer(private_directory("stethoscope-pg-")).start()
    server.execute("CREATE DATABASE stethoscope_template")
    engine = create_engine(server.database_url("stethoscope_template"))
    upgrade_engine(engine)
    engine.dispose()
    yield server
    server.stop()
    shutil.rmtree(server.directory, ignore_errors=True)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory):
    path = tmp_path_factory.mktemp("sqlite-template") / "template.sqlite"
    engine = create_engine(f"sqlite:///{path}")
    upgrade_engine(engine)
    engine.dispose()
    return path


def _sqlite_database(sqlite_template, tmp_path):
    path = tmp_path / "stethoscope.sqlite"
    shutil.copyfile(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def sqlite_url(sqlite_template, tmp_path):
    """A fresh, migrated SQLite database."""
    return _sqlite_database(sqlite_template, tmp_path)


@pytest.fixture
def postgres_url(postgres_server):
    """A fresh, migrated PostgreSQL database, dropped after the test."""
    name = f"stethoscope_test_{next(_database_numbers)}"
    postgres_server.execute(f"CREATE DATABASE {name} TEMPLATE stethoscope_template")
    yield postgres_server.database_url(name)
    postgres_server.execute(f"DROP DATABASE {name} WITH (FORCE)")


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request):
    """A fresh database of each kind: the test runs once on each."""
    return request.getfixturevalue(f"{request.param}_url")


@pytest.fixture
def engine(db_url):
    engine = create_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def db(engine):
    """A plain session on the test's database, for looking at what was stored."""
    with Session(engine) as session:
        yield session


def count(session, model) -> int:
    session.rollback()  # see what other connections committed since
    return session.scalar(select(func.count()).select_from(model))


class CompiledTemplates(jinja2.BytecodeCache):
    """Templates compiled once per test process rather than once per app
    (each app has its own Jinja2 environment); jinja2 checks each entry
    against its template's source before using it."""

    def __init__(self):
        self.compiled: dict[str, bytes] = {}

    def load_bytecode(self, bucket):
        code = self.compiled.get(bucket.key)
        if code is not None:
            bucket.bytecode_from_string(code)

    def dump_bytecode(self, bucket):
        self.compiled[bucket.key] = bucket.bytecode_to_string()


COMPILED_TEMPLATES = CompiledTemplates()


@pytest.fixture
def app_settings(db_url, tmp_path):
    return {
        "sqlalchemy.url": db_url,
        "stethoscope.dedup.backend": "memory",
        # Activity is flushed explicitly by the tests that look at it.
        "stethoscope.activity.flush_seconds": "0",
        "stethoscope.model_dir": str(tmp_path / "models"),
        "stethoscope.secret": "test-secret-of-at-least-thirty-two-characters",
        # Hashing with production parameters takes ~0.2 s a login.
        "stethoscope.accounts.password_profile": "cheapest",
        # The embedded default: gateways in the field send no token.
        "stethoscope.ingest.require_token": "false",
        # Frozen objects are never collected: hundreds of apps would pile up.
        "stethoscope.gc_freeze": "false",
    }


class AppFactory:
    """Builds WSGI apps on the test's database and disposes of them after."""

    def __init__(self, settings):
        self.settings = settings
        self.apps = []

    def wsgi(self, **overrides):
        # Every JSON response is checked against the app's OpenAPI document.
        # Not in app_settings: those are text, as an ini file gives them, and
        # tests hand them to server processes as JSON.
        settings = {**self.settings, "jinja2.bytecode_caching": COMPILED_TEMPLATES}
        app = DocumentedApp(main({}, **{**settings, **overrides}))
        self.apps.append(app)
        return app

    def __call__(self, **overrides) -> webtest.TestApp:
        return webtest.TestApp(
            self.wsgi(**overrides), extra_environ={"REMOTE_ADDR": "192.0.2.10"}
        )

    def close(self):
        for app in self.apps:
            app.registry[DATABASE].dispose()


@pytest.fixture
def make_app(app_settings):
    factory = AppFactory(app_settings)
    yield factory
    factory.close()


PASSWORD = "correct horse battery staple"


@pytest.fixture
def create_user(engine):
    """Add a user straight to the database; returns (username, password)."""

    def create(username="viewer", role="viewer", password=PASSWORD):
        with Session(engine) as session, session.begin():
            UserService(session, Passwords("cheapest")).create(username, password, role)
        return username, password

    return create


def login(app, username, password, status=303):
    """Log ``app`` (a TestApp, which keeps cookies) in through the login form."""
    form = app.get("/login").forms["login"]
    form["username"] = username
    form["password"] = password
    return form.submit(status=status)


@pytest.fixture
def testapp(make_app, create_user):
    """The app, logged in as a viewer (who may read readings and pages)."""
    app = make_app()
    login(app, *create_user("viewer", "viewer"))
    return app


@pytest.fixture
def admin(make_app, create_user):
    """The app, logged in as the admin "boss" (which records login.success)."""
    app = make_app()
    login(app, *create_user("boss", "admin"))
    return app


@pytest.fixture
def anonymous(make_app):
    return make_app()
