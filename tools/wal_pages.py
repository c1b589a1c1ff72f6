"""How many pages of SQLite's write-ahead log a commit of readings writes.

    .venv/bin/python tools/wal_pages.py

The group writer checkpoints once its commits have written about
``writer.CHECKPOINT_PAGES`` pages, estimated by ``writer.pages_written``
from the rows committed; this measures what the estimate stands for. A
database migrated as development.ini's, in a temporary directory, with
SQLite's automatic checkpoints off; readings of 2,400 badges (120 houses of
20, three of the house's eight beacons each) committed by the group writer
in groups of 1 to 500 rows; the log's growth per commit, in pages.
"""

import datetime
import random
import sys
import tempfile
from pathlib import Path

from stethoscope.singletons import DATABASE, INGEST_WRITER

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_ingest
from pyramid.paster import get_app
from sqlalchemy import event

from stethoscope.ingest.schemas import fingerprint
from stethoscope.ingest.writer import pages_written
from stethoscope.migrations import upgrade

GROUPS = (1, 3, 10, 100, 500)
ROWS = 2000  # per group size


def rows(count: int, badges: list[str]) -> list[dict]:
    now = datetime.datetime.now(datetime.UTC)
    made = []
    for _ in range(count):
        badge_id = random.choice(badges)
        house = badge_id.split("-")[0]
        beacons = {
            f"{house}-r{r}": -40 - random.randrange(40)
            for r in random.sample(range(8), 3)
        }
        made.append(
            {
                "badge_id": badge_id,
                "gateway_id": f"{house}-g1",
                "received_at": now,
                "observed_at": now,
                "badge_strength": None,
                "beacons": beacons,
                "fingerprint": fingerprint(badge_id, beacons),
            }
        )
    return made


def main() -> int:
    random.seed(1)
    with tempfile.TemporaryDirectory() as directory:
        workdir = Path(directory)
        (workdir / "models").mkdir()
        ini = bench_ingest.write_ini(
            bench_ingest.ROOT / "development.ini", workdir / "app.ini", 6543
        )
        upgrade(str(ini))
        app = get_app(str(ini))
        database = app.registry[DATABASE]
        writer = app.registry[INGEST_WRITER]
        writer.checkpoint = None  # the log grows: that is what is measured
        engine = database.engine
        engine.dispose()
        event.listen(
            engine,
            "connect",
            lambda connection, _: connection.execute("PRAGMA wal_autocheckpoint=0"),
        )
        log = Path(f"{engine.url.database}-wal")
        with engine.connect() as connection:
            page_size = connection.exec_driver_sql("PRAGMA page_size").scalar()
            badges = [f"h{h}-b{b}" for h in range(120) for b in range(20)]
            print(f"{'rows/commit':>11}  {'pages/commit':>12}  {'estimate':>8}")
            for group in GROUPS:
                before = log.stat().st_size if log.exists() else 0
                commits = max(1, ROWS // group)
                for _ in range(commits):
                    writer.insert(rows(group, badges))
                pages = (log.stat().st_size - before) / (page_size + 24)
                print(
                    f"{group:>11}  {pages / commits:>12.1f}  {pages_written(group):>8}"
                )
        database.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
