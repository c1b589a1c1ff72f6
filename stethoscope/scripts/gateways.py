"""stethoscope-gateway INI token create|revoke|list: gateway bearer tokens.

A token is printed once, when it is created; the database keeps only its
sha256. Creating and revoking are recorded in the audit log (as
console:<your login name>) in the same transaction.
"""

import argparse
import sys

from ..registry.tokens import GatewayTokenService
from ._console import actor, command, console, table, when

PROG = "stethoscope-gateway"


def _tokens(request) -> GatewayTokenService:
    return request.find_service(GatewayTokenService)


def create(request, args) -> None:
    """create a token for a gateway and print it, once"""
    with request.tm:
        token, row = _tokens(request).create(args.gateway_id, actor())
    # Printed only after the commit: a token shown must be one that works.
    print(
        f"created token {row.id} for gateway {row.gateway_id}; it is shown only "
        "now (the database keeps its hash):\n"
        "\n"
        f"    {token}\n"
        "\n"
        "Configure the gateway to send this header with every POST:\n"
        "\n"
        f"    Authorization: Bearer {token}"
    )


def revoke(request, args) -> None:
    """revoke a token (by its id)"""
    with request.tm:
        row, revoked = _tokens(request).revoke(args.token_id, actor())
    if not revoked:
        print(
            f"token {row.id} ({row.prefix}…, gateway {row.gateway_id}) was "
            f"revoked already, {when(row.revoked_at)} by {row.revoked_by}"
        )
        return
    seconds = request.registry.settings["stethoscope.ingest.token_cache_seconds"]
    print(
        f"revoked token {row.id} ({row.prefix}…) of gateway {row.gateway_id}; "
        f"a running server refuses it within {seconds} s"
    )


def list_tokens(request, args) -> None:
    """list tokens (never the token itself)"""
    with request.tm:
        rows = _tokens(request).list(args.gateway_id)
    where = f" for gateway {args.gateway_id}" if args.gateway_id else ""
    print(
        table(
            ("id", "gateway", "prefix", "created", "revoked"),
            [
                (
                    row.id,
                    row.gateway_id,
                    row.prefix + "…",
                    f"{when(row.created_at)} by {row.created_by}",
                    f"{when(row.revoked_at)} by {row.revoked_by}"
                    if row.revoked_at
                    else "-",
                )
                for row in rows
            ],
            empty=f"no tokens{where}",
        )
    )


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__)
    parser.add_argument("config_uri", help="the ini file, e.g. development.ini")
    groups = parser.add_subparsers(dest="group", required=True, metavar="GROUP")
    token = groups.add_parser("token", help="gateway bearer tokens")
    commands = token.add_subparsers(dest="command", required=True, metavar="COMMAND")

    new = command(commands, "create", create, write=True)
    new.add_argument("gateway_id", help="the gateway's pi_id")
    old = command(commands, "revoke", revoke, write=True)
    old.add_argument("token_id", type=int)
    listed = command(commands, "list", list_tokens, write=False)
    listed.add_argument("gateway_id", nargs="?", help="only this gateway's")
    return parser


main = console(parser)


if __name__ == "__main__":
    sys.exit(main())
