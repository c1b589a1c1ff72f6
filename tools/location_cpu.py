"""CPU of GET /badges/{id}/location in-process: a deterministic request mix.

    .venv/bin/python tools/location_cpu.py --setup       # once: ~1 minute
    .venv/bin/python tools/location_cpu.py               # the figures
    .venv/bin/python tools/location_cpu.py --profile var/bench/location-cpu.prof

What a location request costs the server's thread (``time.thread_time``),
apart from waiting for the database or a shared core, so that two versions
of the code can be compared on a busy machine. The app is built from
development.ini (its database URL changed) and driven with webtest, with a
user's API token, against a small PostgreSQL database made by
``tools/bench_location.py``'s set-up (database ``stethoscope_location_cpu``,
``--readings`` [100,000], kept under var/bench/location-cpu/): a request's
work does not depend on the stored readings' count (the window query is one
index range).

``--badges`` [20] badges get 24 readings each, 2.5 s apart and ending now;
then, ``--rounds`` [25] times, each badge in turn gets the mix of 200
requests a second over 200 badges fed every 5 s: a new reading then a
request (a row to predict, the filter to run), its oldest reading removed
then a request (the filter), and three requests of an unchanged window.
The window is set to an hour so that the mix does not depend on how fast
the loop runs. Printed: the mean and the median of each kind (ms of CPU).
"""

import argparse
import datetime
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_location as bench

bench.VAR = bench.ROOT / "var" / "bench" / "location-cpu"
bench.PG_DATABASE = "stethoscope_location_cpu"
bench.PG_URL = f"postgresql+psycopg://postgres@127.0.0.1:5432/{bench.PG_DATABASE}"
WINDOW = 24


def build_app(workdir: Path):
    from pyramid.paster import get_app

    ini = bench.write_ini(
        bench.ROOT / "development.ini",
        workdir / "location-cpu.ini",
        bench.PORTS["app"],
        overrides={
            "sqlalchemy.url": bench.PG_URL,
            "stethoscope.model_dir": str(workdir / "models"),
            "stethoscope.locating.window_seconds": "3600",
            "stethoscope.locating.recent_seconds": "3600",
        },
    )
    return get_app(str(ini))


class Feed:
    """The badges' readings, inserted and removed by this process."""

    def __init__(self, badges: int, readings_each: int):
        import psycopg

        from stethoscope.simulate.house import generated_house
        from stethoscope.simulate.traffic import labelled_readings

        house = generated_house()
        self.gateways = [gateway.id for gateway in house.gateways]
        self.beacons: dict[str, list] = {}
        start = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
        for record in labelled_readings(
            house, badges=badges, start=start, seconds=readings_each * 5 + 10, seed=3
        ):
            self.beacons.setdefault(record.badge_id, []).append(record.beacons)
        self.badges = sorted(self.beacons)
        self.used = dict.fromkeys(self.badges, 0)
        self.live = {badge: [] for badge in self.badges}
        self.connection = psycopg.connect(
            f"host=127.0.0.1 user=postgres dbname={bench.PG_DATABASE}",
            autocommit=True,
        )
        since = datetime.datetime.now(datetime.UTC) - datetime.timedelta(hours=2)
        self.connection.execute(
            "DELETE FROM readings WHERE badge_id = ANY(%s) AND observed_at > %s",
            (self.badges, since),
        )

    def add(self, badge: str, at: datetime.datetime) -> None:
        beacons = self.beacons[badge][self.used[badge]]
        self.used[badge] += 1
        [row] = bench.rows_of([_Record(badge, at, beacons)], self.gateways)
        (reading_id,) = self.connection.execute(
            f"INSERT INTO readings ({bench.COLUMNS}) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id",
            row,
        ).fetchone()
        self.live[badge].append(reading_id)

    def remove_oldest(self, badge: str) -> None:
        self.connection.execute(
            "DELETE FROM readings WHERE id = %s", (self.live[badge].pop(0),)
        )


class _Record:
    def __init__(self, badge_id, observed_at, beacons):
        self.badge_id, self.observed_at, self.beacons = badge_id, observed_at, beacons


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--setup", action="store_true")
    parser.add_argument("--readings", type=int, default=100_000)
    parser.add_argument("--badges", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=25)
    parser.add_argument("--profile", help="write a cProfile (thread CPU) here")
    args = parser.parse_args()
    if args.setup:
        print(bench.set_up("postgresql", args.readings))
        return
    meta = json.loads(bench.meta_path("postgresql").read_text())
    import webtest

    app = webtest.TestApp(build_app(bench.VAR / "postgresql"))
    headers = {
        "Authorization": f"Bearer {meta['token']}",
        "Accept": "application/json",
    }
    feed = Feed(args.badges, WINDOW + args.rounds + 2)
    now = datetime.datetime.now(datetime.UTC)
    for badge in feed.badges:
        for i in range(WINDOW):
            feed.add(badge, now - datetime.timedelta(seconds=60 - 2.5 * i))
    for badge in feed.badges:  # the model, the house, the statements
        app.get(f"/badges/{badge}/location", headers=headers)
    profile = None
    if args.profile:
        import cProfile

        profile = cProfile.Profile(time.thread_time)
    cpu = {"new reading": [], "reading gone": [], "unchanged": []}
    for _ in range(args.rounds):
        for badge in feed.badges:
            for step in range(5):
                kind = "unchanged"
                if step == 0:
                    feed.add(badge, datetime.datetime.now(datetime.UTC))
                    kind = "new reading"
                elif step == 1:
                    feed.remove_oldest(badge)
                    kind = "reading gone"
                started = time.thread_time()
                if profile is not None:
                    profile.enable()
                response = app.get(f"/badges/{badge}/location", headers=headers)
                if profile is not None:
                    profile.disable()
                cpu[kind].append(time.thread_time() - started)
                assert response.status_int == 200
    every = [seconds for kind in cpu.values() for seconds in kind]
    print(
        f"{len(every)} requests, CPU a request: mean "
        f"{statistics.mean(every) * 1e3:.2f} ms; median "
        + ", ".join(
            f"{kind} {statistics.median(values) * 1e3:.2f}"
            for kind, values in cpu.items()
        )
        + " ms"
    )
    if profile is not None:
        profile.dump_stats(args.profile)


if __name__ == "__main__":
    main()
