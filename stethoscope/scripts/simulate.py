"""stethoscope-simulate: a simulated care home (docs/simulator.md).

  setup INI       put the house in the database: site, rooms with floors and
                  doors, beacons in their rooms, gateways, badges with
                  wearers; running it again changes nothing
  live URL        post the gateways' traffic to a running server in real time
                  (or --speed times faster) until Ctrl-C or --duration
  csv OUT         write labelled readings (one row per badge update, with the
                  true room) in the labelled-readings CSV format; - is stdout

The same --house, --badges and --seed give the same walk in every command.
"""

import argparse
import datetime
import sys
import time
from collections.abc import Callable

from ..labels.csvio import EARLIEST, LATEST, parse_timestamp
from ..registry.services import RegistryService
from ..simulate.csvout import write_csv
from ..simulate.house import HOUSES, House, house_by_name
from ..simulate.installer import KINDS, install_house
from ..simulate.live import SUMMARY_EVERY, LiveRunner, stopped_by_signals
from ..simulate.traffic import DEFAULT_START, run_seconds
from ._console import ConsoleError, argument_parser, audit, command, console

PROG = "stethoscope-simulate"
# The numbers the options take: finite (--days inf never stops writing,
# --speed inf posts as fast as the loop turns) and within what a test, a
# demonstration or a training set needs.
MAX_DAYS = 366
MAX_SECONDS = MAX_DAYS * 86400
MAX_SPEED = 1000
# A big care home has a few hundred rooms; beyond these a house, its
# badges' walks or the file would only take the machine's memory or disk.
MAX_ROOMS = 1_000
MAX_BEACONS = 5_000
MAX_BADGES = 10_000
MAX_READINGS = 100_000_000


def _house(args) -> House:
    return house_by_name(
        args.house, rooms=args.rooms, beacons=args.beacons, seed=args.house_seed
    )


def _badges(args, house: House) -> int:
    return house.default_badges if args.badges is None else args.badges


# ---- setup ----


def setup(request, args) -> None:
    """create the house in the database"""
    house = _house(args)
    badges = _badges(args, house)
    with request.tm:
        # Not the request's service: its audit would log every row as by
        # nobody; the setup is logged once, below, as the console user's.
        result = install_house(RegistryService(request.db), house, badges)
        if result.changed:
            audit(
                request,
                "simulate.setup",
                target=house.site_id,
                details={
                    "site": result.site,
                    **{
                        f"{kind}_{outcome}": result.count(outcome, kind)
                        for kind in KINDS
                        for outcome in ("created", "updated")
                    },
                },
            )
    if not result.changed:
        print(
            f"{house.name} (site {house.site_id}) is already set up: "
            f"{len(house.rooms)} rooms, {len(house.beacons)} beacons, "
            f"{len(house.gateways)} gateways, {badges} badges; nothing changed"
        )
        return
    print(f"{house.name} (site {house.site_id}): site {result.site}")
    for kind in KINDS:
        print(
            f"  {kind}: {result.count('created', kind)} created, "
            f"{result.count('updated', kind)} updated, "
            f"{result.count('unchanged', kind)} unchanged"
        )


# ---- live ----


def _tokens(values: list[str], house: House) -> dict[str | None, str]:
    gateways = {gateway.id for gateway in house.gateways}
    tokens: dict[str | None, str] = {}
    for value in values:
        gateway, sep, token = value.partition("=")
        if sep and gateway in gateways:
            tokens[gateway] = token
        else:
            tokens[None] = value
    return tokens


def live(args) -> int:
    """post real-time traffic to a server"""
    house = _house(args)
    try:
        runner = LiveRunner(
            house,
            args.url,
            badges=args.badges,
            seed=args.seed,
            speed=args.speed,
            duration=args.duration,
            tokens=_tokens(args.token, house),
            summary_every=args.summary_every,
        )
    except ValueError as exc:
        raise ConsoleError(str(exc)) from None
    badges = len(runner.simulation.badge_ids)
    pace = "real time" if args.speed == 1 else f"{args.speed:g}x real time"
    print(
        f"simulate: {house.name}, {badges} badges, {len(house.gateways)} gateways "
        f"posting to {args.url} in {pace}; Ctrl-C stops",
        flush=True,
    )
    if args.control:
        runner.follow_commands(sys.stdin)
    started = time.monotonic()
    with stopped_by_signals(runner):
        counts = runner.run()
    print(
        f"simulate: stopped after {time.monotonic() - started:,.0f} s: {counts.line()}",
        flush=True,
    )
    return 0


# ---- csv ----


def _seconds(args) -> float | None:
    """--days in seconds; one day when neither --days nor --readings is given."""
    if args.days is not None:
        return args.days * 86400
    return 86400.0 if args.readings is None else None


def _past_latest(args) -> str | None:
    """Why the rows would be timed past what the CSV format takes, or None.

    csvio refuses times from LATEST on, so that a file written here can be
    imported (and datetime arithmetic cannot overflow on the way).
    """
    house = _house(args)
    length = run_seconds(_badges(args, house), _seconds(args), args.readings)
    if length <= (LATEST - args.start).total_seconds():
        return None
    return (
        f"--start {args.start:%Y-%m-%dT%H:%M:%SZ} plus {length / 86400:,.1f} "
        f"simulated days goes past the year {LATEST.year - 1}, the last a "
        "labelled-readings CSV takes: choose an earlier --start or fewer "
        "--days or --readings"
    )


def csv_file(args) -> int:
    """write labelled readings to a CSV file"""
    house = _house(args)
    seconds = _seconds(args)
    started = time.monotonic()
    try:
        if args.out == "-":
            summary = _write(sys.stdout, house, args, seconds)
        else:
            with open(args.out, "w", newline="", encoding="utf-8") as handle:
                summary = _write(handle, house, args, seconds)
    except OSError as exc:
        raise ConsoleError(f"cannot write {args.out}: {exc.strerror}") from None
    where = "standard output" if args.out == "-" else args.out
    print(
        f"{where}: {summary.rows:,} rows ({summary.labelled:,} labelled) of "
        f"{summary.badges} badges in {house.name}, "
        f"{_when(summary.first)} to {_when(summary.last)}, "
        f"in {time.monotonic() - started:,.1f} s",
        file=sys.stderr,
    )
    return 0


def _write(handle, house, args, seconds):
    return write_csv(
        handle,
        house,
        badges=args.badges,
        start=args.start,
        seconds=seconds,
        readings=args.readings,
        seed=args.seed,
        unlabelled_share=args.unlabelled_share,
    )


def _when(moment: datetime.datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment else "-"


# ---- arguments ----


def _count(maximum: int) -> Callable[[str], int]:
    """An option's type: a whole number from 1 to ``maximum``."""

    def count(text: str) -> int:
        # The length first: int() of thousands of digits is slow, then refused.
        if not (text.isascii() and text.isdigit() and len(text) <= len(str(maximum))):
            value = None
        else:
            value = int(text)
        if value is None or not 1 <= value <= maximum:
            raise argparse.ArgumentTypeError(
                f"must be a whole number from 1 to {maximum:,}"
            )
        return value

    return count


def _positive_float(maximum: int) -> Callable[[str], float]:
    """An option's type: a number more than 0 and at most ``maximum``."""

    def positive_float(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        # Written so that nan fails too.
        if not 0 < value <= maximum:
            raise argparse.ArgumentTypeError(
                f"must be more than 0 and at most {maximum:,}"
            )
        return value

    return positive_float


def _share(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError("must be between 0 and 1")
    return value


def _start(text: str) -> datetime.datetime:
    try:
        moment = parse_timestamp(text)
    except (ValueError, OverflowError):
        raise argparse.ArgumentTypeError(
            "must be an ISO-8601 date-time (UTC without an offset)"
        ) from None
    if not EARLIEST <= moment < LATEST:
        raise argparse.ArgumentTypeError(
            f"must be in the years {EARLIEST.year}-{LATEST.year - 1}, as the "
            "labelled-readings CSV requires"
        )
    return moment


def _bounded(
    parser,
    flag: str,
    kind: Callable,
    maximum: int,
    help: str,
    *,
    default=None,
    shown=None,
) -> None:
    """An option taking a number up to ``maximum``: its type refuses more,
    and its help says the default (or ``shown``) and the maximum."""
    shown = shown if default is None else f"{default:g}"
    parser.add_argument(
        flag,
        type=kind(maximum),
        default=default,
        help=f"{help} ({f'{shown}; ' if shown else ''}at most {maximum:,})",
    )


def _house_options(parser: argparse.ArgumentParser, *, seed: bool = True) -> None:
    parser.add_argument(
        "--house", choices=HOUSES, default="demo", help="which house (default demo)"
    )
    _bounded(parser, "--rooms", _count, MAX_ROOMS, "generated house: rooms", default=40)
    _bounded(
        parser, "--beacons", _count, MAX_BEACONS, "generated house: beacons", default=50
    )
    parser.add_argument(
        "--house-seed",
        type=int,
        default=0,
        help="generated house: where the spare beacons go (0)",
    )
    _bounded(
        parser,
        "--badges",
        _count,
        MAX_BADGES,
        "how many badges",
        shown="default: the house's own, 6 in the demo house, 200 in the generated one",
    )
    if seed:
        parser.add_argument(
            "--seed", type=int, default=0, help="the random walk and radio (0)"
        )


def parser() -> argparse.ArgumentParser:
    parser = argument_parser(PROG, __doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    p = command(commands, "setup", setup, write=True)
    p.add_argument("config_uri", help="the ini file, e.g. development.ini")
    _house_options(p, seed=False)

    p = command(commands, "live", live, write=None)
    p.add_argument("url", help="the server, e.g. http://localhost:6543")
    _house_options(p)
    p.add_argument(
        "--token",
        action="append",
        default=[],
        metavar="[GATEWAY=]TOKEN",
        help="bearer token to send: for every gateway, or GATEWAY=TOKEN for "
        "one (repeat for each)",
    )
    _bounded(
        p,
        "--speed",
        _positive_float,
        MAX_SPEED,
        "simulated seconds per real second",
        default=1.0,
    )
    _bounded(
        p,
        "--duration",
        _positive_float,
        MAX_SECONDS,
        "stop after this many simulated seconds",
        shown="default: run until stopped",
    )
    p.add_argument(
        "--summary-every",
        type=_positive_float(86400),
        default=SUMMARY_EVERY,
        metavar="SECONDS",
        help=f"print a summary line this often ({SUMMARY_EVERY:g} s)",
    )
    p.add_argument(
        "--control",
        action="store_true",
        help="read commands from standard input, one a line: silence ID, "
        "restore ID (a gateway or beacon of the house)",
    )

    p = command(commands, "csv", csv_file, write=None)
    p.set_defaults(check=_past_latest)
    p.add_argument("out", help="the file to write; - for standard output")
    _house_options(p)
    length = p.add_mutually_exclusive_group()
    _bounded(length, "--days", _positive_float, MAX_DAYS, "simulated days", shown="1")
    _bounded(length, "--readings", _count, MAX_READINGS, "stop after this many rows")
    p.add_argument(
        "--start",
        type=_start,
        default=DEFAULT_START,
        help="the first update's time, ISO-8601 "
        f"(default {DEFAULT_START:%Y-%m-%dT%H:%M:%SZ})",
    )
    p.add_argument(
        "--unlabelled-share",
        type=_share,
        default=0.0,
        metavar="FRACTION",
        help="chance that a stay in a room is written with an empty room (0)",
    )
    return parser


main = console(parser)


if __name__ == "__main__":
    sys.exit(main())
