"""stethoscope-models INI COMMAND: list, activate, roll back and compare models.

A model version is made by stethoscope-train; here it is made the active
model of its site, or the site goes back to the model active before. A
model that cannot be loaded (missing or changed files, another
scikit-learn, types outside the allowlist) is refused and the active model
stays. Running servers pick up a change within
stethoscope.models.refresh_seconds. Changes are recorded in the audit log
as console:<your login name>.
"""

import argparse
import functools
import json
import sys

from ..learning.schemas import ModelVersion
from ..learning.services import ModelService
from ..schemas import MAX_ROW_ID as MAX_MODEL_ID
from ..singletons import MODEL_STORE
from ._console import (
    ConsoleError,
    actor,
    argument_parser,
    audit,
    command,
    console,
    invoked_as,
    table,
    when,
)

PROG = "stethoscope-models"


def _service(request) -> ModelService:
    return ModelService(
        request.db,
        request.registry[MODEL_STORE],
        audit=functools.partial(audit, request),
    )


def model_id(text: str) -> int:
    """A model version id as argparse reads it: 1 to ``MAX_MODEL_ID``, the
    range of the id column (a larger number would make the database driver
    raise rather than find nothing)."""
    digits = text.isascii() and text.isdigit() and len(text) <= len(str(MAX_MODEL_ID))
    if not digits or not 1 <= int(text) <= MAX_MODEL_ID:
        shown = text if len(text) <= 20 else f"{text[:20]}…"
        raise argparse.ArgumentTypeError(
            f"{shown!r} is not a model id (a whole number from 1 to {MAX_MODEL_ID})"
        )
    return int(text)


def _figure(value) -> str:
    return "-" if not isinstance(value, int | float) else f"{value:.3f}"


def list_models(request, args) -> None:
    """list model versions, newest first"""
    with request.tm:
        service = _service(request)
        versions = service.versions(args.site)
        active = {
            site_id: getattr(service.active(site_id), "id", None)
            for site_id in {version.site_id for version in versions}
        }
        rows = [
            ModelVersion.of(
                version, active=active[version.site_id] == version.id, full=True
            ).model_dump(mode="json")
            for version in versions
        ]
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    where = f" of site {args.site}" if args.site else ""
    print(
        table(
            (
                "id",
                "site",
                "version",
                "algorithm",
                "bal. acc.",
                "log loss",
                "created",
                "by",
                "active",
            ),
            [
                (
                    row["id"],
                    row["site_id"],
                    row["version"],
                    row["algorithm"],
                    _figure(row["metrics"].get("balanced_accuracy")),
                    _figure(row["metrics"].get("log_loss")),
                    when(version.created_at),
                    row["created_by"],
                    "yes" if row["active"] else "",
                )
                for row, version in zip(rows, versions, strict=True)
            ],
            empty=f"no models{where} yet: train one with stethoscope-train",
        )
    )


# A refused activation or an unknown id (ModelRefused, ModelNotFound) is a
# ServiceError: _console.run rolls back and prints its message.


def activate(request, args) -> None:
    """make a version its site's model"""
    with request.tm:
        activation = _service(request).activate(args.version_id, actor=actor())
        version = activation.model_version
        message = (
            f"model {version.version} of {version.site_id} "
            f"(id {version.id}) is now active"
        )
    print(message)


def rollback(request, args) -> None:
    """go back to the model active before the current one"""
    with request.tm:
        service = _service(request)
        site_id = args.site or _only_site(service)
        previous = service.active(site_id)
        version = service.rollback(site_id, actor=actor()).model_version
        message = (
            f"site {site_id} rolled back to model {version.version} "
            f"(id {version.id}); model {previous.version} is no longer active"
        )
    print(message)


def _only_site(service: ModelService) -> str:
    sites = service.sites_with_models()
    if len(sites) == 1:
        return sites[0]
    if not sites:
        raise ConsoleError("there are no models to roll back")
    raise ConsoleError(
        f"several sites have models ({', '.join(sites)}): name one with --site"
    )


def compare(request, args) -> None:
    """two versions' figures side by side"""
    with request.tm:
        comparison = _service(request).compare(args.a, args.b).model_dump(mode="json")
    if args.json:
        print(json.dumps(comparison, indent=2))
        return
    a, b = comparison["a"], comparison["b"]
    head_a = f"{a['site_id']} v{a['version']}"
    head_b = f"{b['site_id']} v{b['version']}"
    rows = [
        (row["name"], _figure(row["a"]), _figure(row["b"]), _signed(row["delta"]))
        for row in comparison["metrics"]
    ]
    rows += [
        (
            f"recall {row['room']}",
            _figure(row["a"]),
            _figure(row["b"]),
            _signed(row["delta"]),
        )
        for row in comparison["per_room_recall"]
    ]
    print(f"a: {head_a} ({a['algorithm']}), b: {head_b} ({b['algorithm']})")
    print(table(("figure", "a", "b", "b - a"), rows))
    if not comparison["same_site"]:
        print(
            f"note: the two models are of different sites; run "
            f"{invoked_as(PROG)} with two models of one site to compare like "
            f"with like"
        )


def _signed(value) -> str:
    return "-" if not isinstance(value, int | float) else f"{value:+.3f}"


def parser() -> argparse.ArgumentParser:
    parser = argument_parser(PROG, __doc__)
    parser.add_argument("config_uri", help="the ini file, e.g. development.ini")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    listed = command(commands, "list", list_models, write=False)
    listed.add_argument("--site", help="only the models of this site")
    listed.add_argument("--json", action="store_true", help="print JSON")
    chosen = command(commands, "activate", activate, write=True)
    chosen.add_argument("version_id", type=model_id, help="the id shown by list")
    back = command(commands, "rollback", rollback, write=True)
    back.add_argument("--site", help="the site (needed when several have models)")
    both = command(commands, "compare", compare, write=False)
    both.add_argument("a", type=model_id, help="id of the first version")
    both.add_argument("b", type=model_id, help="id of the second version")
    both.add_argument("--json", action="store_true", help="print JSON")
    return parser


main = console(parser)


if __name__ == "__main__":
    sys.exit(main())
