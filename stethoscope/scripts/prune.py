"""stethoscope-prune INI --older-than 30d: delete old readings, keeping those
inside training runs (what models learn from) and each badge-day's stays.

A reading older than the cut-off goes unless a training run of its badge
(not cancelled; an open one counts to now) covers its time. Before the
first reading of a badge-day goes, the day's stays are computed as
GET /badges/{id}/stays answers them (the locating service, the site's
active model) and kept: that day's stays and history answer from them
afterwards. Readings go a batch at a time, each batch committed before the
next, so the server's writers wait at most one batch; stopping it (Ctrl-C)
keeps what was deleted, and running it again goes on. --dry-run only
counts. Each prune is one readings.prune event in the audit log, as
console:<your login>. config/systemd/stethoscope-prune.timer runs it
nightly.
"""

import argparse
import datetime
import re
import sys

from tqdm import tqdm

from ..errors import NotFound, Unavailable
from ..learning.services import LoadedModel
from ..locating.services import (
    DayCache,
    HouseFacts,
    LocatingService,
    LocatingSettings,
)
from ..retention.services import DEFAULT_BATCH_SIZE, RetentionService
from ..singletons import ACTIVE_MODELS, DATABASE
from ._console import actor, argument_parser, run

PROG = "stethoscope-prune"
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
# A badge-day's stays are kept when its first reading goes, so the day must
# be over at every site by then: a cut-off two days back is in a day that
# ended at least a day ago in any timezone (UTC-12 to UTC+14).
MIN_AGE = datetime.timedelta(days=2)
MAX_AGE = datetime.timedelta(days=100 * 366)
MAX_BATCH_SIZE = 1_000_000


def duration(text: str) -> datetime.timedelta:
    """``30d``, ``48h``, ``2w``: an age of at least two days."""
    match = re.fullmatch(r"([0-9]{1,6})([smhdw])", text.strip())
    if not match:
        raise argparse.ArgumentTypeError(
            "a whole number and a unit: s, m, h, d or w (e.g. 30d, 12h)"
        )
    age = datetime.timedelta(seconds=int(match[1]) * UNITS[match[2]])
    if not MIN_AGE <= age <= MAX_AGE:
        raise argparse.ArgumentTypeError("from 2d to 100 years")
    return age


def batch_size(text: str) -> int:
    if not (text.isascii() and text.isdigit() and len(text) <= 7):
        value = 0
    else:
        value = int(text)
    if not 1 <= value <= MAX_BATCH_SIZE:
        raise argparse.ArgumentTypeError(f"a whole number from 1 to {MAX_BATCH_SIZE:,}")
    return value


class _Pinned:
    """One site's model, as ActiveModels gives it: the stays computed and
    the version stored with them are the same model's, whatever an
    activation does meanwhile."""

    def __init__(self, site_id: str, model: LoadedModel):
        self.site_id, self.model = site_id, model

    def get(self, site_id: str) -> LoadedModel | None:
        return self.model if site_id == self.site_id else None

    def status(self) -> dict:
        return {}


class LocatedStays:
    """A badge-day's stays from the locating service, as the server's
    ``GET /badges/{id}/stays?date=`` computes them (retention's DayStays)."""

    def __init__(self, registry):
        self.active_models = registry[ACTIVE_MODELS]
        self.settings = LocatingSettings.from_settings(registry.settings)
        self.facts = HouseFacts(dead_seconds=self.settings.beacon_dead_seconds)

    def __call__(self, session, badge_id, site_id, day):
        model = self.active_models.get(site_id)
        if model is None:
            return None
        service = LocatingService(
            session, _Pinned(site_id, model), self.facts, DayCache(0), self.settings
        )
        try:
            return model.version_id, service.stays(badge_id, day=day)
        except (NotFound, Unavailable):  # the badge is at another site
            return None


def prune(request, args) -> None:
    # The service commits batch by batch on sessions of its own, not in the
    # request's transaction: it takes the app's database.
    service = RetentionService(
        request.registry[DATABASE],
        actor=actor(),
        actor_type="console",
        stays=LocatedStays(request.registry),
    )
    cutoff = service.cutoff(args.older_than)
    when = f"{cutoff:%Y-%m-%d %H:%M:%S} UTC"
    planned = service.count(cutoff)
    if args.dry_run:
        print(
            f"dry run: {planned.deleted:,} readings from before {when} would be "
            f"deleted; {planned.kept_for_training_runs:,} stay for training "
            f"runs (counted in {planned.seconds:,.1f} s); nothing was deleted"
        )
        return
    with tqdm(
        total=planned.deleted,
        unit=" readings",
        unit_scale=True,
        disable=args.quiet or None,
        file=sys.stderr,
    ) as bar:
        result = service.prune(cutoff, batch_size=args.batch_size, progress=bar.update)
    rate = result.deleted / result.seconds if result.seconds else 0
    print(
        f"deleted {result.deleted:,} readings from before {when} in "
        f"{result.batches:,} batches of at most {args.batch_size:,}; "
        f"{result.kept_for_training_runs:,} kept for training runs; "
        f"{result.seconds:,.1f} s ({rate:,.0f} readings/s); stays of "
        f"{result.days_archived:,} badge-days kept ({result.stays_archived:,} "
        f"stays), {result.days_without_stays:,} with none to keep (no site or "
        "no active model)"
    )


def parser() -> argparse.ArgumentParser:
    parser = argument_parser(PROG, __doc__)
    parser.add_argument("config_uri", help="the ini file, e.g. production.ini")
    parser.add_argument(
        "--older-than",
        type=duration,
        required=True,
        metavar="AGE",
        help="delete readings observed longer ago than this: 30d, 72h, 2w …",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="count what would be deleted and kept; delete nothing",
    )
    parser.add_argument(
        "--batch-size",
        type=batch_size,
        default=DEFAULT_BATCH_SIZE,
        metavar="N",
        help="readings per transaction (default %(default)s)",
    )
    parser.add_argument(
        "--quiet", action="store_true", help="no progress bar (the summary only)"
    )
    return parser


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    return run(args.config_uri, prune, args, write=False)


if __name__ == "__main__":
    sys.exit(main())
