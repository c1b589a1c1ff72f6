"""stethoscope-evaluate --train TRAIN.csv --test TEST.csv: offline accuracy.

Trains on TRAIN exactly as stethoscope-train does (same candidates, same
cross-validation grouped by training session, same selection) and predicts TEST
with the predictor the server uses: ``raw`` per reading, ``smoothed``
following each badge's readings in time order. Unlabelled TEST rows are
predicted but not scored. Needs no database and no ini file.

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
from ..learning.evaluation import evaluate
from ..learning.trainer import CHOICES, TrainingError
from ._console import EXIT_ERROR, ConsoleError, argument_parser, table

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


def summary(result: dict) -> str:
    raw, smoothed = result["raw"], result["smoothed"]
    lines = [
        f"algorithm: {result['algorithm']} (selected by balanced log loss, "
        f"CV grouped by training session: {result['cv']['scheme']['scheme']}, "
        f"{result['cv']['scheme']['folds']} folds, "
        f"{result['cv']['scheme']['sessions']:,} sessions)",
        f"train: {result['n_train']:,} readings in {result['train_runs']:,} runs; "
        f"test: {result['n_test']:,} readings, {result['n_test_labelled']:,} labelled",
        "",
        table(
            ("", "accuracy", "balanced accuracy"),
            [
                ("raw", percent(raw["accuracy"]), percent(raw["balanced_accuracy"])),
                (
                    "smoothed",
                    percent(smoothed["accuracy"]),
                    percent(smoothed["balanced_accuracy"]),
                ),
            ],
        ),
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
        "--json", action="store_true", help="print one JSON object instead of tables"
    )
    return parser


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    try:
        train_rows = load(args.train)
        test_rows = load(args.test)
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
            )
    except (ConsoleError, TrainingError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    if args.json:
        sys.stdout.write(
            orjson.dumps(result, option=orjson.OPT_INDENT_2).decode() + "\n"
        )
    else:
        print(summary(result))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
