"""stethoscope-export INI FILE.csv [--site S] [--since DATE]: labelled readings.

Writes the readings of completed (not cancelled) training runs as a
labelled-readings CSV (docs/labelled_csv.md), in time order per badge, the
room column holding the room id: what stethoscope-import reads, so an
export imported into an empty database gives the same readings and runs.
The file is written beside FILE and renamed over it once complete, so an
interrupted export never leaves a truncated backup; FILE "-" writes to
standard output. Recorded in the audit log as console:<your login name>.
"""

import argparse
import os
import sys
import tempfile
import time

from ..labels.csvio import parse_timestamp
from ..labels.exporter import LabelledExporter
from ..registry.models import Site
from ..singletons import DATABASE
from ._console import ConsoleError, argument_parser, audit, console
from .labelled_import import Progress

PROG = "stethoscope-export"


def since(text: str):
    try:
        return parse_timestamp(text)
    except (ValueError, OverflowError):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO-8601 date or date-time"
        ) from None


def export_file(request, args) -> None:
    database = request.registry[DATABASE]
    progress = Progress("exported")
    started = time.monotonic()
    with database.session(write=False) as session:
        exporter = LabelledExporter(session)
        exporter.begin_snapshot()
        if args.site is not None and session.get(Site, args.site) is None:
            raise ConsoleError(f"no site {args.site!r}")
        options = {"site_id": args.site, "since": args.since, "progress": progress}
        try:
            if args.file == "-":
                summary = exporter.write(sys.stdout, **options)
            else:
                summary = _write_then_rename(exporter, args.file, options)
        finally:
            progress.done()
    with request.tm:
        audit(
            request,
            "labels.export",
            target=os.path.basename(args.file),
            details={
                "rows": summary.rows,
                "site": args.site,
                "since": args.since.isoformat() if args.since else None,
            },
        )
    if args.file != "-":
        print(
            f"{args.file}: {summary.rows:,} readings, {summary.beacons} beacon "
            f"columns, in {time.monotonic() - started:,.1f} s"
        )


def _write_then_rename(exporter, path: str, options: dict):
    directory = os.path.dirname(os.path.abspath(path))
    try:
        fd, partial = tempfile.mkstemp(
            dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".part"
        )
    except OSError as exc:
        raise ConsoleError(f"cannot write in {directory}: {exc.strerror}") from None
    try:
        with open(fd, "w", newline="", encoding="utf-8") as out:
            summary = exporter.write(out, **options)
        os.replace(partial, path)
    except OSError as exc:
        raise ConsoleError(f"cannot write {path}: {exc.strerror}") from None
    finally:
        if os.path.exists(partial):
            os.unlink(partial)
    return summary


def parser() -> argparse.ArgumentParser:
    parser = argument_parser(PROG, __doc__)
    parser.add_argument("config_uri", help="the ini file, e.g. development.ini")
    parser.add_argument("file", help='the CSV to write ("-": standard output)')
    parser.add_argument("--site", help="only runs in rooms of this site")
    parser.add_argument(
        "--since",
        type=since,
        help="only readings observed from then on (ISO-8601 date or date-time; "
        "no offset means UTC)",
    )
    parser.set_defaults(run=export_file, write=True)
    return parser


main = console(parser)


if __name__ == "__main__":
    sys.exit(main())
