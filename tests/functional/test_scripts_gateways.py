"""stethoscope-gateway token: bearer tokens from the console, on both databases."""

import hashlib

import pytest
from sqlalchemy import select

from stethoscope.audit.models import AuditEvent
from stethoscope.registry.models import GatewayToken
from stethoscope.registry.tokens import TokenCache
from stethoscope.scripts import gateways
from tests.conftest import count


def create(ini, capsys, gateway_id="G1") -> str:
    """Create a token with the script; the token it printed."""
    assert gateways.main([ini, "token", "create", gateway_id]) == 0
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if "Authorization:" in line)
    token = header.split("Bearer ")[1]
    assert f"    {token}\n" in out  # also alone, to copy
    return token


def events(db) -> list[tuple]:
    db.rollback()
    return [
        (e.action, e.actor, e.actor_type, e.target, e.ip, e.details)
        for e in db.scalars(select(AuditEvent).order_by(AuditEvent.id))
    ]


def post(app, token, status):
    return app.post_json(
        "/rssi_readings",
        {"badge_id": "B1", "pi_id": "G1", "beacons": {"a": -50}},
        headers={"Authorization": f"Bearer {token}"},
        status=status,
    )


def test_create_prints_a_token_that_verifies_and_stores_its_hash(ini, db, capsys):
    token = create(ini, capsys)
    grant = TokenCache(0).verify(lambda: db, token)
    assert grant.gateway_id == "G1"

    row = db.scalars(select(GatewayToken)).one()
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token.startswith(row.prefix)
    stored = [getattr(row, column.key) for column in GatewayToken.__table__.columns]
    assert not any(token in str(value) for value in stored)
    assert row.created_by == "console:matron"
    assert events(db) == [
        (
            "token.create",
            "console:matron",
            "console",
            "G1",
            None,
            {"token_id": row.id, "prefix": row.prefix},
        )
    ]
    assert token not in str(events(db))


def test_revoke(ini, db, make_app, capsys):
    token = create(ini, capsys)
    app = make_app(**{"stethoscope.ingest.require_token": "true"})
    post(app, token, 201)
    token_id = db.scalars(select(GatewayToken.id)).one()

    assert gateways.main([ini, "token", "revoke", str(token_id)]) == 0
    assert f"revoked token {token_id}" in capsys.readouterr().out
    db.rollback()
    row = db.get(GatewayToken, token_id)
    assert row.revoked_at is not None and row.revoked_by == "console:matron"
    assert TokenCache(0).verify(lambda: db, token) is None
    # Another process (this app) caches a token for token_cache_seconds.
    post(make_app(**{"stethoscope.ingest.require_token": "true"}), token, 401)

    assert gateways.main([ini, "token", "revoke", str(token_id)]) == 0
    assert "revoked already" in capsys.readouterr().out
    assert [event[0] for event in events(db)] == ["token.create", "token.revoke"]
    assert events(db)[1][3:] == (
        "G1",
        None,
        {"token_id": token_id, "prefix": row.prefix},
    )


def test_list_never_shows_the_token_or_its_hash(ini, db, capsys):
    first = create(ini, capsys, "G1")
    second = create(ini, capsys, "G2")
    assert gateways.main([ini, "token", "revoke", "1"]) == 0
    capsys.readouterr()

    assert gateways.main([ini, "token", "list"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split() == ["id", "gateway", "prefix", "created", "revoked"]
    assert lines[1].split()[:3] == ["1", "G1", first[:10] + "…"]
    assert "by console:matron" in lines[1].split("UTC", 2)[2]  # revoked
    assert lines[2].split()[:3] == ["2", "G2", second[:10] + "…"]
    assert lines[2].endswith("  -")
    hashes = list(db.scalars(select(GatewayToken.token_hash)))
    for secret in [first, second, *hashes]:
        assert secret not in out

    assert gateways.main([ini, "token", "list", "G2"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2
    assert gateways.main([ini, "token", "list", "G9"]) == 0
    assert capsys.readouterr().out == "no tokens for gateway G9\n"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["create", "has space"], "gateway_id: 1 to 64"),
        (["create", "x" * 65], "gateway_id: 1 to 64"),
        (["revoke", "99"], "no token 99"),
    ],
)
def test_errors_exit_2_and_write_nothing(ini, db, capsys, argv, message):
    assert gateways.main([ini, "token", *argv]) == 2
    captured = capsys.readouterr()
    assert message in captured.err and captured.out == ""
    assert count(db, GatewayToken) == 0 and count(db, AuditEvent) == 0


def test_a_token_id_is_a_number(ini, capsys):
    with pytest.raises(SystemExit) as excinfo:
        gateways.main([ini, "token", "revoke", "stg_abc"])
    assert excinfo.value.code == 2
    assert "invalid int value" in capsys.readouterr().err


def test_a_bad_ini_exits_2(tmp_path, capsys):
    assert gateways.main([str(tmp_path / "missing.ini"), "token", "list"]) == 2
    assert "cannot load" in capsys.readouterr().err
