"""stethoscope-train INI [--site S] [--algorithm A] [--activate] [--json]

Trains a room classifier for one site from its completed training runs:
the candidates are cross-validated with whole training sessions held out
(a run, or the runs of badges carried together in one room), the best by
balanced log loss is refitted on all the data and stored as the
site's next model version (a write-once artifact in the model store, then
its row). With --activate it also becomes the active model — only if it is
not worse than the active one on the same cross-validation folds (the
active model's algorithm is cross-validated on them too). Every server
process picks an activation up within seconds.

Exit status 0, or 2 with what is missing when the data cannot make a
model: fewer than two rooms, no room with two training sessions (runs
recorded together count as one) for cross-validation to judge, or no
beacon heard.

A one-site install needs no --site. Training reads the data, then lets the
database go: nothing is locked while the candidates are fitted. Recorded
in the audit log as console:<your login name>.
"""

import argparse
import functools
import sys
import time
from types import SimpleNamespace

import orjson
from sqlalchemy import select
from tqdm import tqdm

from ..learning.data import beacon_changes, from_database
from ..learning.services import ModelRefused, ModelService
from ..learning.trainer import CHOICES, TrainingError, train
from ..registry.models import Site
from ..singletons import DATABASE, MODEL_STORE
from ._console import (
    ConsoleError,
    actor,
    argument_parser,
    audit,
    console,
    invoked_as,
    table,
)

PROG = "stethoscope-train"


def pick_site(session, wanted: str | None) -> str:
    sites = session.scalars(select(Site.id).order_by(Site.id)).all()
    if wanted is not None:
        if wanted not in sites:
            raise ConsoleError(
                f"no site {wanted!r} (sites: {', '.join(sites) or 'none yet'})"
            )
        return wanted
    if len(sites) == 1:
        return sites[0]
    if not sites:
        raise ConsoleError(
            "there is no site yet: create the house (rooms, beacons) on the "
            "admin pages, record training runs, then train"
        )
    raise ConsoleError(f"several sites: choose one with --site ({', '.join(sites)})")


def percent(value) -> str:
    return "-" if value is None else f"{value:.1%}"


def summary(version, result, activation: str) -> str:
    metrics = result.metrics
    lines = [
        f"site {version.site_id}: model version {version.version} (id {version.id}), "
        f"{result.algorithm}, from {result.n_readings:,} readings in "
        f"{result.n_runs:,} training runs",
        f"cross-validation: {metrics['cv']['scheme']}, {metrics['cv']['folds']} "
        f"folds grouped by training session ({metrics['cv']['sessions']:,} "
        f"sessions of {metrics['cv']['runs']:,} runs: runs recorded together are "
        f"one), {metrics['cv']['readings']:,} readings; "
        "selected by balanced log loss",
        "",
        table(
            (
                "candidate",
                "bal. log loss",
                "accuracy",
                "balanced",
                "smoothed acc.",
                "smoothed bal.",
                "seconds",
            ),
            [
                (
                    ("* " if name == result.algorithm else "  ") + name,
                    f"{figures['balanced_log_loss']:.3f}",
                    percent(figures["accuracy"]),
                    percent(figures["balanced_accuracy"]),
                    percent(figures["smoothed"]["accuracy"]),
                    percent(figures["smoothed"]["balanced_accuracy"]),
                    f"{figures['seconds']:.1f}",
                )
                for name, figures in metrics["candidates"].items()
            ],
        ),
        "",
        table(
            ("room", "support", "precision", "recall", "smoothed recall"),
            [
                (
                    room,
                    f"{figures['support']:,}",
                    percent(figures["precision"]),
                    percent(figures["recall"]),
                    percent(metrics["smoothed"]["per_room"][room]["recall"]),
                )
                for room, figures in metrics["per_room"].items()
            ],
        ),
        "",
        f"calibration: expected calibration error {metrics['calibration']['ece']:.3f}, "
        f"Brier score {metrics['calibration']['brier']:.3f}",
    ]
    lines.extend(f"warning: {warning}" for warning in result.warnings)
    lines.append(f"training took {metrics['training_seconds']:.1f} s")
    lines.append(activation)
    return "\n".join(lines)


def train_site(request, args) -> None:
    try:
        _train_site(request, args)
    except (TrainingError, ModelRefused) as exc:
        raise ConsoleError(str(exc)) from None


def _train_site(request, args) -> None:
    database = request.registry[DATABASE]
    # Read in a session of its own, closed before fitting: a write
    # transaction held for minutes would stop ingest on SQLite.
    loading = time.perf_counter()
    with database.session(write=False) as session:
        site_id = pick_site(session, args.site)
        data = from_database(session, site_id)
        changes = beacon_changes(session, site_id)
        service = ModelService(session, request.registry[MODEL_STORE])
        active = service.active(site_id)
        active_algorithm = active.algorithm if active is not None else None
    load_seconds = time.perf_counter() - loading
    if not len(data):
        raise ConsoleError(
            f"site {site_id} has no readings in completed training runs: record "
            "some (admin pages, Training) or import a labelled CSV"
        )
    compare_with = ()
    if args.activate and active_algorithm and active_algorithm != args.algorithm:
        compare_with = (active_algorithm,)
    with tqdm(
        desc=f"training {site_id}",
        unit="fold",
        disable=args.json or not sys.stderr.isatty(),
        file=sys.stderr,
    ) as progress:
        result = train(
            data,
            algorithm=args.algorithm,
            seed=args.seed,
            progress=progress,
            beacon_changes=changes,
            compare_with=compare_with,
        )
    who = actor()
    with request.tm:
        service = ModelService(
            request.db,
            request.registry[MODEL_STORE],
            audit=functools.partial(audit, request),
        )
        version = service.register(site_id, result, created_by=who)
        activated = False
        if not args.activate:
            note = (
                f"not activated: {invoked_as('stethoscope-models')} "
                f"{args.config_uri} activate {version.id}"
            )
        elif active is None:
            service.activate(version.id, actor=who)
            activated = True
            note = "activated (the site had no active model)"
        else:
            # The active model's algorithm, cross-validated on these folds.
            same_folds = SimpleNamespace(
                metrics=result.metrics["candidates"][active.algorithm]
            )
            chosen = result.metrics["candidates"][result.algorithm]
            if service.is_not_worse(chosen, same_folds):
                service.activate(version.id, actor=who)
                activated = True
                note = f"activated (not worse than version {active.version})"
            else:
                note = (
                    f"NOT activated: worse than active version {active.version} "
                    "on the same cross-validation folds"
                )
        outcome = {
            "site_id": site_id,
            "model_version_id": version.id,
            "version": version.version,
            "algorithm": result.algorithm,
            "activated": activated,
            "note": note,
            "n_readings": result.n_readings,
            "n_runs": result.n_runs,
            "load_seconds": round(load_seconds, 2),
            "directory": version.directory,
            "metrics": result.metrics,
            "warnings": result.warnings,
        }
        text = summary(version, result, note)
    if args.json:
        sys.stdout.write(orjson.dumps(outcome, option=orjson.OPT_INDENT_2).decode())
        sys.stdout.write("\n")
    else:
        print(text)


def parser() -> argparse.ArgumentParser:
    parser = argument_parser(PROG, __doc__)
    parser.add_argument("config_uri", help="the ini file, e.g. development.ini")
    parser.add_argument("--site", help="the site to train (needed with several)")
    parser.add_argument("--algorithm", choices=CHOICES, default="auto")
    parser.add_argument(
        "--activate",
        action="store_true",
        help="activate the new model unless it is worse than the active one",
    )
    parser.add_argument("--seed", type=int, default=0, help="for the candidates")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(run=train_site, write=True)
    return parser


main = console(parser)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
