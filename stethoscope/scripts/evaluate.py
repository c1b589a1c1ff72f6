"""stethoscope-evaluate --train TRAIN.csv --test TEST.csv: offline accuracy.

Trains on TRAIN exactly as stethoscope-train does (same candidates, same
cross-validation grouped by training session, same selection) and runs TEST
through the Locator the server uses: ``raw`` per reading, ``smoothed`` the
live filter following each badge's readings in time order, ``history`` the
day-as-a-whole smoothing of the location history; with room changes per
hour, predicted and true (flapping). Unlabelled TEST rows are predicted but
not scored. Needs no database and no ini file.

``--dead-beacon NAME`` (repeatable) is the dead-beacon experiment: NAME is
taken out of every TEST reading and the Locator told it is dead.
``--feature-set`` trains with another feature set (``relative``: without
the dead-beacon flags, the naive baseline).

Exit status 0, or 2 when a file cannot be read or holds bad rows (listed
with their line numbers: an evaluation that silently skipped rows would
not be the evaluation asked for), or when TRAIN cannot make a model (too
few rooms or runs to cross-validate, no beacon heard), with what it lacks.
"""

import argparse
import sys

import orjson
from tqdm import tqdm

from ..labels.csvio import CsvFormatError, LabelledRow, RowError, read_rows
from ..learning.features import DEFAULT_FEATURE_SET, FEATURE_SETS
from ..learning.trainer import CHOICES, TrainingError
from ..locating.evaluation import KINDS, evaluate
from ._console import ConsoleError, argument_parser, console, table

PROG = "stethoscope-evaluate"
ERRORS_SHOWN = 10


def load(path: str) -> list[LabelledRow]:
    """Every row of a labelled-readings CSV; ConsoleError naming bad lines."""
    try:
        with open(path, newline="", encoding="utf-8-sig", errors="replace") as handle:
            results = list(read_rows(handle))
    except OSError as exc:
        raise ConsoleError(f"cannot read {path}: {exc.strerror}") from None
    except CsvFormatError as exc:
        raise ConsoleError(f"{path}: {exc}") from None
    errors = [result for result in results if isinstance(result, RowError)]
    if errors:
        shown = "\n".join(f"  {path}: {error}" for error in errors[:ERRORS_SHOWN])
        more = len(errors) - ERRORS_SHOWN
        tail = f"\n  ... and {more:,} more" if more > 0 else ""
        raise ConsoleError(f"{len(errors):,} bad row(s):\n{shown}{tail}")
    return results


def percent(value) -> str:
    return "-" if value is None else f"{value:.1%}"


def rate(value) -> str:
    return "-" if value is None else f"{value:.1f}"


def summary(result: dict) -> str:
    changes = result["room_changes_per_hour"]
    lines = [
        f"algorithm: {result['algorithm']} (selected by balanced log loss, "
        f"CV grouped by training session: {result['cv']['scheme']['scheme']}, "
        f"{result['cv']['scheme']['folds']} folds, "
        f"{result['cv']['scheme']['sessions']:,} sessions)",
        f"train: {result['n_train']:,} readings in {result['train_runs']:,} runs; "
        f"test: {result['n_test']:,} readings, {result['n_test_labelled']:,} labelled",
        "",
        table(
            ("", "accuracy", "balanced accuracy", "room changes/h"),
            [
                (
                    "true",
                    "",
                    "",
                    rate(changes["truth"]),
                ),
                *(
                    (
                        kind,
                        percent(result[kind]["accuracy"]),
                        percent(result[kind]["balanced_accuracy"]),
                        rate(changes[kind]),
                    )
                    for kind in KINDS
                ),
            ],
        ),
        f"unknown (live top probability below {result['unknown']['floor']:.2f}): "
        f"{percent(result['unknown']['share'])} of labelled readings",
        "",
        table(
            ("room", "support", "precision", "recall", "smoothed recall"),
            [
                (
                    room,
                    f"{figures['support']:,}",
                    percent(figures["raw"]["precision"]),
                    percent(figures["raw"]["recall"]),
                    percent(figures["smoothed"]["recall"]),
                )
                for room, figures in sorted(result["per_room"].items())
            ],
        ),
    ]
    if result["dead_beacons"]:
        lines.append(f"\ndead beacons: {', '.join(result['dead_beacons'])}")
    if result["unknown_rooms"]:
        lines.append(
            f"\nrooms in TEST the model never saw (always wrong): "
            f"{', '.join(result['unknown_rooms'])}"
        )
    if result["imposter_beacons"]:
        lines.append(
            f"beacons in TEST unknown to the model (ignored): "
            f"{', '.join(result['imposter_beacons'])}"
        )
    lines.extend(f"warning: {warning}" for warning in result["warnings"])
    lines.append(f"training took {result['training_seconds']:.1f} s")
    return "\n".join(lines)


def parser() -> argparse.ArgumentParser:
    parser = argument_parser(PROG, __doc__)
    parser.add_argument("--train", required=True, help="labelled CSV to train on")
    parser.add_argument("--test", required=True, help="labelled CSV to judge on")
    parser.add_argument("--algorithm", choices=CHOICES, default="auto")
    parser.add_argument(
        "--seed", type=int, default=0, help="for the candidates' randomness"
    )
    parser.add_argument(
        "--dead-beacon",
        action="append",
        default=[],
        metavar="NAME",
        help="take beacon NAME out of TEST and tell the locator it is dead "
        "(repeatable)",
    )
    parser.add_argument(
        "--feature-set",
        choices=FEATURE_SETS,
        default=DEFAULT_FEATURE_SET,
        help="train with this feature set (relative: without dead-beacon flags)",
    )
    parser.add_argument(
        "--json", action="store_true", help="print one JSON object instead of tables"
    )
    parser.set_defaults(run=evaluate_files, write=None)
    return parser


def evaluate_files(args) -> int:
    train_rows = load(args.train)
    test_rows = load(args.test)
    try:
        with tqdm(
            desc="cross-validating",
            unit="fold",
            disable=not sys.stderr.isatty(),
            file=sys.stderr,
        ) as progress:
            result, _ = evaluate(
                train_rows,
                test_rows,
                algorithm=args.algorithm,
                seed=args.seed,
                progress=progress,
                dead_beacons=args.dead_beacon,
                feature_set=args.feature_set,
            )
    except TrainingError as exc:
        raise ConsoleError(str(exc)) from None
    if args.json:
        sys.stdout.write(
            orjson.dumps(result, option=orjson.OPT_INDENT_2).decode() + "\n"
        )
    else:
        print(summary(result))
    return 0


main = console(parser)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
