"""stethoscope-import INI FILE.csv [--site S] [--create-rooms]: labelled readings.

Stores the readings of a labelled-readings CSV (docs/labelled_csv.md) with
their own timestamps, bypassing deduplication, and turns every contiguous
labelled stretch of one badge in one room into a completed training run.
Importing the same file again adds nothing, so an interrupted import is
completed by running it again. Rows with errors are listed with their line
numbers and the good rows kept; the exit status is 0 once the file was
read through, 2 when it could not be (bad ini, no such site, unreadable
file or header). Recorded in the audit log as console:<your login name>.
"""

import argparse
import datetime
import os
import sys
import time

from ..labels.csvio import CsvFormatError, read_rows
from ..labels.importer import ImportRefused, ImportSummary, LabelledImporter
from ..singletons import DATABASE
from ._console import ConsoleError, actor, argument_parser, audit, console, invoked_as

PROG = "stethoscope-import"


class Progress:
    """Rows done and rows/s on one rewritten line of stderr, at a terminal only."""

    def __init__(self, verb: str, stream=None):
        self.stream = stream or sys.stderr
        self.verb = verb
        self.enabled = self.stream.isatty()
        self.started = time.monotonic()
        self.shown = False

    def __call__(self, rows: int) -> None:
        if not self.enabled:
            return
        seconds = max(time.monotonic() - self.started, 1e-9)
        self.stream.write(
            f"\r{self.verb} {rows:,} rows, {rows / seconds:,.0f} rows/s, "
            f"{seconds:,.0f} s"
        )
        self.stream.flush()
        self.shown = True

    def done(self) -> None:
        if self.shown:
            self.stream.write("\n")
            self.stream.flush()


def report(path: str, summary: ImportSummary, seconds: float) -> str:
    lines = [
        f"{path}: {summary.rows:,} rows read in {seconds:,.1f} s",
        f"readings: {summary.readings_created:,} created, "
        f"{summary.readings_existing:,} already there",
        f"training runs: {summary.runs_created:,} created, "
        f"{summary.runs_existing:,} already there",
    ]
    if summary.rooms_created:
        lines.append(f"rooms created: {', '.join(summary.rooms_created)}")
    lines.append(f"errors: {summary.error_count:,}")
    # Rows are checked in two steps (the row, then its room and run), so
    # the errors kept are put back in line order.
    lines.extend(f"  {error}" for error in sorted(summary.errors, key=lambda e: e.line))
    rest = summary.error_count - len(summary.errors)
    if rest:
        lines.append(f"  ... and {rest:,} more")
    return "\n".join(lines)


def import_file(request, args) -> None:
    skew = request.registry.settings["stethoscope.ingest.max_clock_skew_s"]
    importer_args = {
        "site_id": args.site,
        "create_rooms": args.create_rooms,
        "max_clock_skew": datetime.timedelta(seconds=skew),
    }
    try:
        importer = LabelledImporter(
            request.registry[DATABASE], actor=actor(), **importer_args
        )
        importer.check_site()
    except ImportRefused as exc:
        hint = ""
        if args.site and "no site" in str(exc):
            hint = " (create it first; sites are listed on the admin pages)"
        raise ConsoleError(f"{exc}{hint}") from None
    try:
        # Undecodable bytes become U+FFFD, which no id or number contains:
        # the row is then reported like any other bad row.
        handle = open(args.file, newline="", encoding="utf-8-sig", errors="replace")  # noqa: SIM115
    except OSError as exc:
        raise ConsoleError(f"cannot read {args.file}: {exc.strerror}") from None
    progress = Progress("imported")
    started = time.monotonic()
    try:
        with handle:
            summary = importer.run(read_rows(handle), progress)
    except CsvFormatError as exc:
        raise ConsoleError(f"{args.file}: {exc}") from None
    except OSError as exc:
        raise ConsoleError(
            f"reading {args.file}: {exc}; what was imported so far stays, and "
            f"running {invoked_as(PROG)} again completes it"
        ) from None
    finally:
        progress.done()
    seconds = time.monotonic() - started
    with request.tm:
        audit(
            request,
            "labels.import",
            target=os.path.basename(args.file),
            details={**summary.as_json(), "site": args.site},
        )
    print(report(args.file, summary, seconds))


def parser() -> argparse.ArgumentParser:
    parser = argument_parser(PROG, __doc__)
    parser.add_argument("config_uri", help="the ini file, e.g. development.ini")
    parser.add_argument("file", help="the labelled-readings CSV")
    parser.add_argument(
        "--site",
        help="the site (house) the rooms are in: room names are looked up in "
        "it; it must exist",
    )
    parser.add_argument(
        "--create-rooms",
        action="store_true",
        help="create rooms the file names that --site lacks (id and name as written)",
    )
    parser.set_defaults(run=import_file, write=True, check=_rooms_need_site)
    return parser


def _rooms_need_site(args) -> str | None:
    if args.create_rooms and not args.site:
        return "--create-rooms needs --site: rooms belong to a site"
    return None


main = console(parser)


if __name__ == "__main__":
    sys.exit(main())
