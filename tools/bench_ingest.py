"""Ingest benchmarks: start the servers, drive them, print a table.

    .venv/bin/python tools/bench_ingest.py                  # every scenario
    .venv/bin/python tools/bench_ingest.py --scenarios hello,mix --duration 10
    .venv/bin/python tools/bench_ingest.py --profile var/bench-profile
    .venv/bin/python tools/bench_ingest.py --scenarios prodhello,prod --server threads=8

Scenarios (docs/benchmarks.md gives the targets and the latest figures):

  hello     tools/hello_app.py on waitress, one process pinned to core 1,
            wrk pinned to core 0, the same request bodies as ``mix``.
  mix       the application (SQLite, in-process dedup) pinned to core 1,
            wrk with tools/ingest_mix.lua pinned to core 0, ~95 % duplicates.
  openloop  the same server at a fixed 1,000 req/s (tools/traffic.py, an
            asyncio client timing from each request's due time).
  batch     the same server, batches of 500 buffered (late) readings, all
            originals, from 2 connections.
  prodhello two hello-world processes in the production layout: its ceiling.
  prod      two application processes (PostgreSQL, Redis dedup) pinned to
            cores 0 and 1 on two ports, the gateways of each house split
            between them as a balancer would; two wrk processes unpinned;
            alternated with prodhello round by round.

Servers run with pserve on ini files written from development.ini and
production.ini (same [server:main] settings, their ports changed, quiet
logging with waitress.queue silenced) in a temporary directory, removed at
the end with the private database and redis-server. Only 127.0.0.1.
"""

import argparse
import configparser
import contextlib
import json
import math
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from importlib import metadata
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import traffic

TOOLS = Path(__file__).resolve().parent
ROOT = TOOLS.parent
BIN = Path(sys.executable).parent
LUA = TOOLS / "ingest_mix.lua"
SCENARIOS = ("hello", "mix", "openloop", "batch", "prodhello", "prod")
PG_DATABASE = "stethoscope_bench"
PG_URL = f"postgresql+psycopg://postgres@127.0.0.1:5432/{PG_DATABASE}"
REDIS_PORT = 6391
# [server:main] settings for every server of a run, hello-worlds included
# (--server): a waitress variant is measured against its own ceiling.
SERVER_OVERRIDES: dict[str, str] = {}
PORTS = {
    "hello": 6601,
    "app": 6602,
    "prod0": 6611,
    "prod1": 6612,
    "prodhello0": 6621,
    "prodhello1": 6622,
}


# -- configuration -------------------------------------------------------------


def write_ini(
    source: Path,
    target: Path,
    port: int,
    app: dict | None = None,
    overrides: dict | None = None,
) -> Path:
    """Copy ``source`` with its port, app settings and logging changed."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str
    parser.read(source)
    parser["server:main"]["listen"] = f"127.0.0.1:{port}"
    for key, value in SERVER_OVERRIDES.items():
        parser["server:main"][key] = value
    if app is not None:
        parser.remove_section("app:main")
        parser.add_section("app:main")
        for key, value in app.items():
            parser["app:main"][key] = value
    else:
        settings = parser["app:main"]
        settings["pyramid.reload_templates"] = "false"
        settings["stethoscope.model_dir"] = str(target.parent / "models")
        settings["stethoscope.docs_dir"] = str(ROOT / "docs" / "api")
        for key, value in (overrides or {}).items():
            settings[key] = value
    if parser.has_section("alembic"):
        parser["alembic"]["script_location"] = str(ROOT / "alembic")
    # Quiet servers: a log line per request would be measured too, and at
    # saturation waitress logs "Task queue depth" on nearly every request.
    parser["logger_root"]["level"] = "WARN"
    if parser.has_section("logger_stethoscope"):
        parser["logger_stethoscope"]["level"] = "WARN"
    loggers = [k.strip() for k in parser["loggers"]["keys"].split(",")]
    if "waitress_queue" not in loggers:
        loggers.append("waitress_queue")
        parser["loggers"]["keys"] = ", ".join(loggers)
    parser["logger_waitress_queue"] = {
        "level": "ERROR",
        "handlers": "",
        "qualname": "waitress.queue",
    }
    with target.open("w") as handle:
        parser.write(handle)
    return target


def server_settings(ini: Path) -> dict:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(ini)
    return dict(parser["server:main"])


# -- processes -------------------------------------------------------------------


class Server:
    """A pserve process pinned with taskset; stopped by its own process group."""

    def __init__(self, name, ini, port, cpus, workdir, env=None, health="/health"):
        self.name = name
        self.port = port
        self.cpus = cpus
        self.log_path = workdir / f"{name}.log"
        self.health = health
        with self.log_path.open("w") as log:
            self.process = subprocess.Popen(
                ["taskset", "-c", cpus, str(BIN / "pserve"), str(ini)],
                cwd=ROOT,
                env={**os.environ, **(env or {})},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._wait_ready()

    def _wait_ready(self, timeout_s=30.0):
        deadline = time.monotonic() + timeout_s
        url = f"http://127.0.0.1:{self.port}{self.health}"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited; see {self.log_path}")
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(url, timeout=1) as response,
            ):
                if response.status == 200:
                    return
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} not ready in {timeout_s} s; {self.log_path}")

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1]
        utime, stime = fields.split()[11:13]
        return (int(utime) + int(stime)) / os.sysconf("SC_CLK_TCK")

    def problems(self) -> list[str]:
        text = self.log_path.read_text(errors="replace")
        return [
            line
            for line in text.splitlines()
            if re.search(r"\b(ERROR|CRITICAL|Traceback)\b", line)
        ][:5]

    def stop(self):
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)


def run(command, env=None, timeout=120, check=True):
    return subprocess.run(
        command,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=check,
    )


# -- the machine's other work ------------------------------------------------------


def core_busy() -> dict[int, tuple[int, int]]:
    """Per core: (busy, total) jiffies since boot, from /proc/stat."""
    cores = {}
    for line in Path("/proc/stat").read_text().splitlines():
        name, *fields = line.split()
        if name.startswith("cpu") and name[3:].isdigit():
            values = [int(v) for v in fields]
            idle = values[3] + values[4]
            cores[int(name[3:])] = (sum(values) - idle, sum(values))
    return cores


def busy_since(before: dict) -> dict[int, float]:
    after = core_busy()
    return {
        core: round((after[core][0] - b[0]) / max(1, after[core][1] - b[1]), 2)
        for core, b in before.items()
    }


def fsync_ms(path: Path) -> float:
    """Milliseconds to make a 4 KiB write durable in ``path``'s file system."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, b"\0" * 4096)
        started = time.perf_counter()
        os.fsync(fd)
        return (time.perf_counter() - started) * 1000
    finally:
        os.close(fd)
        os.unlink(path)


def wait_quiet(
    limit_s: float, threshold=0.15, fsync_limit_ms=20.0
) -> tuple[float, float]:
    """Wait (at most ``limit_s``) for both cores to be nearly idle and for
    the disk to make writes durable promptly.

    Other work on the machine (a test suite, another server) takes CPU from
    the pinned server and the load generator; the figures would be theirs.
    This host's disk also stalls at times: 4 KiB fsyncs that take 0.3 ms
    took 0.05-1.25 s for a minute after a run had deleted its files (the
    file system discards online, a likely cause). Every commit of SQLite
    and PostgreSQL waits for such a write, so a run that starts then
    measures the disk. Returns the busiest core's share and the
    slowest of ten fsyncs (ms) of the last second measured.
    """
    probe = Path(tempfile.gettempdir()) / f"stethoscope-bench-fsync-{os.getpid()}"
    deadline = time.monotonic() + limit_s
    while True:
        before = core_busy()
        slowest = 0.0
        for _ in range(10):
            slowest = max(slowest, fsync_ms(probe))
            time.sleep(0.1)
        busiest = max(busy_since(before).values())
        quiet = busiest <= threshold and slowest <= fsync_limit_ms
        if quiet or time.monotonic() >= deadline:
            return busiest, round(slowest, 1)


# -- wrk ---------------------------------------------------------------------------


def start_wrk(port, seconds, connections, cpus, *script_args):
    command = [
        "taskset",
        "-c",
        cpus,
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        "5s",
        "--latency",
        "-s",
        str(LUA),
        f"http://127.0.0.1:{port}",
        "--",
        *script_args,
    ]
    return subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def finish_wrk(process, seconds) -> dict:
    out, err = process.communicate(timeout=seconds + 30)
    for line in out.splitlines():
        if line.startswith("BENCH "):
            result = json.loads(line[6:])
            result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
            return result
    raise RuntimeError(f"wrk printed no result:\n{out}\n{err}")


def merge(results: list[dict]) -> dict:
    merged = {"rps": sum(r["rps"] for r in results), "statuses": {}, "errors": {}}
    for r in results:
        for key, n in r["statuses"].items():
            merged["statuses"][key] = merged["statuses"].get(key, 0) + n
        for key, n in r["errors"].items():
            merged["errors"][key] = merged["errors"].get(key, 0) + n
    # Percentiles cannot be merged exactly: report the worse of the two.
    merged["latency_us"] = {
        key: max(r["latency_us"][key] for r in results)
        for key in results[0]["latency_us"]
    }
    merged["requests"] = sum(r["requests"] for r in results)
    merged["generated"] = sum(r["generated"] for r in results)
    return merged


CALIBRATIONS = 6
CALIBRATION_SECONDS = 6
ORIGINALS = 0.05  # 20 posts of each payload: 5 advertisements x 4 gateways


def originals_share(result: dict) -> float:
    return result["statuses"].get("201", 0) / max(1, result["requests"])


def calibrate(once, houses: int, args) -> int:
    """The number of houses that gives 95 % duplicates at the rate they allow.

    With h houses at r req/s each payload is posted 80 h / r... times: the
    share of originals is 4 h / r. More houses mean more originals, which
    cost more, so a lower rate and more originals still; scaling h to a
    measured rate in one step overshoots. The share grows with h, so this
    brackets and bisects, each step measured after its payloads were
    primed (see ``drive``).
    """
    low = high = None  # houses known to give too few / too many originals
    for step in range(CALIBRATIONS):
        tag = f"c{step}"
        once(houses, args.warmup, tag)
        share = originals_share(once(houses, CALIBRATION_SECONDS, tag))
        print(
            f"  calibration {step}: houses={houses} originals {share:.1%}",
            file=sys.stderr,
        )
        if abs(share - ORIGINALS) <= ORIGINALS / 10:
            break
        if share < ORIGINALS:
            low = houses
        else:
            high = houses
        if low is not None and high is not None:
            if high - low <= 1:
                break
            houses = (low + high) // 2
        else:
            houses = max(1, round(houses * ORIGINALS / max(share, 0.001)))
    return houses


class Load:
    """wrk driving ``servers``: one process, or one per server (``split``)."""

    def __init__(self, servers, args, cpus, split=False, mode="mix"):
        self.servers = servers
        self.args = args
        self.cpus = cpus
        self.split = split
        self.mode = mode
        self.plans = (
            [(s.port, "gateways=0,1") for s in servers[:1]]
            + [(s.port, "gateways=2,3") for s in servers[1:]]
            if split
            else [(servers[0].port, "gateways=0,1,2,3")]
        )
        self.connections = args.connections // len(self.plans)
        # One wrk process: payloads advance with its request count, which
        # gives 95 % duplicates exactly, whatever the rate (ingest_mix.lua).
        # Two cannot share a count; they keep wall-clock time, and the
        # houses are calibrated to the rate instead (``calibrate``).
        self.clock = "count" if mode == "mix" and not split else "time"

    def once(self, houses, duration, tag, offset=0) -> dict:
        processes = [
            start_wrk(
                port,
                duration,
                self.connections,
                self.cpus,
                f"houses={houses}",
                f"mode={self.mode}",
                gateway_arg,
                f"tag={tag}",
                f"clock={self.clock}",
                f"offset={offset}",
            )
            for port, gateway_arg in self.plans
        ]
        return merge([finish_wrk(p, duration) for p in processes])

    def houses(self, calibrated=True) -> int:
        """Warm up and find the number of houses to measure with.

        ``calibrated=False``: scaled to the warm-up's rate, for a server
        that answers every post alike (the hello-world).
        """
        # Two warm-ups: the first meets a cold server (slow first requests),
        # the second measures the rate the houses are scaled to.
        warm = self.once(self.args.houses, self.args.warmup, "w")
        warm = self.once(traffic.houses_for_rate(warm["rps"]), self.args.warmup, "v")
        if self.clock == "count":
            # A round of every (gateway, badge, house) in about 0.8 s: each
            # payload's 20 posts within 4 s, well inside the 5.5-s window.
            return max(1, math.ceil(warm["rps"] / 100))
        houses = traffic.houses_for_rate(warm["rps"])
        if self.mode == "mix" and calibrated:
            houses = calibrate(self.once, houses, self.args)
        return houses

    def measure(self, houses, tag, prime=True, seconds=None) -> dict:
        seconds = seconds or self.args.duration
        quiet, fsync = wait_quiet(self.args.quiet_wait)
        offset = 0
        if prime and self.mode == "mix":
            # Post the measured run's payloads for a while first: else every
            # badge's first payload is an original at its start (20 x houses
            # of them on top of the steady 5 %: 9-10 % in a 10-15-s run, not
            # the 5 % of gateways that have been posting all along). With
            # clock=count the measured run carries on from the primer's count.
            offset = self.once(houses, self.args.warmup, tag)["generated"]
        cpu_before = [s.cpu_seconds() for s in self.servers]
        cores_before = core_busy()
        result = self.once(houses, seconds, tag, offset if self.clock == "count" else 0)
        cpu = [
            s.cpu_seconds() - b for s, b in zip(self.servers, cpu_before, strict=True)
        ]
        result["houses"] = houses
        result["core_busy"] = busy_since(cores_before)
        result["busy_before"] = quiet
        result["fsync_before_ms"] = fsync
        result["server_cpu"] = [round(c / seconds, 2) for c in cpu]
        # CPU time on the servers' cores that the servers did not use:
        # another program (or the kernel's network work) took it.
        server_cores = {int(s.cpus) for s in self.servers if s.cpus.isdigit()}
        result["other_cpu"] = round(
            sum(result["core_busy"][c] for c in server_cores)
            - sum(result["server_cpu"]),
            2,
        )
        return result


def drive(
    servers, args, cpus, split=False, mode="mix", seconds=None, calibrated=True
) -> dict:
    """Warm up, calibrate the houses to the rate, then measure; re-run when
    another program took CPU on the servers' cores."""
    load = Load(servers, args, cpus, split, mode)
    houses = load.houses(calibrated)
    best = None
    # In the production layout the load generator, PostgreSQL and Redis share
    # the servers' cores: "other" CPU is expected there, so no re-runs.
    for attempt in range(1 + (0 if split else args.retries)):
        result = load.measure(houses, f"m{attempt}", seconds=seconds)
        if best is None or result["other_cpu"] < best["other_cpu"]:
            best = result
        if result["other_cpu"] <= args.max_other_cpu:
            break
    return best


def alternate(pairs: list[tuple[str, Load, bool]], rounds: int) -> dict:
    """Measure each (name, load, calibrated) in turn, ``rounds`` times.

    This machine's speed drifts by a third within minutes (a shared host):
    a hello-world measured once and the ingest app a minute later compare
    the two moments as much as the two servers. Alternating them and taking
    medians compares like with like.
    """
    houses = {name: load.houses(calibrated) for name, load, calibrated in pairs}
    runs = {name: [] for name, _, _ in pairs}
    for n in range(rounds):
        for name, load, _ in pairs:
            runs[name].append(load.measure(houses[name], f"{name}{n}"))
    return runs


def summarise_rounds(runs: dict, name: str, base: str | None = None):
    """The median run of ``name`` and a note on its rounds; with ``base``'s
    rounds beside them, the median of the rounds' ratios to ``base``
    (``ratio_to_<base>``, ``rounds_ratio``)."""
    result = median_run(runs[name])
    note = f"median of {len(runs[name])} rounds {result['rounds_rps']}"
    if base in runs:
        ratios = [
            run["rps"] / under["rps"]
            for under, run in zip(runs[base], runs[name], strict=True)
        ]
        result[f"ratio_to_{base}"] = statistics.median(ratios)
        result["rounds_ratio"] = [round(r, 3) for r in ratios]
        note += (
            f"; {result[f'ratio_to_{base}']:.0%} of {base} "
            f"(median of the rounds' ratios {[f'{r:.0%}' for r in ratios]})"
        )
    return result, note


def median_run(runs: list[dict]) -> dict:
    """The run with the median rate, with every round's rate beside it."""
    ordered = sorted(runs, key=lambda r: r["rps"])
    result = dict(ordered[(len(ordered) - 1) // 2])
    result["rounds_rps"] = [round(r["rps"]) for r in runs]
    return result


# -- profiling ---------------------------------------------------------------------


def profile(server, args, out_dir: Path, name: str, mode: str):
    """py-spy the server while wrk drives it; collapsed stacks and a summary."""
    py_spy = BIN / "py-spy"
    raw = out_dir / f"{name}.collapsed.txt"
    spy = subprocess.Popen(
        [
            "taskset",
            "-c",
            "0",
            str(py_spy),
            "record",
            "--pid",
            str(server.process.pid),
            "--duration",
            str(args.duration),
            "--rate",
            "200",
            "--format",
            "raw",
            "--output",
            str(raw),
            "--nonblocking",
            "--gil",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    result = drive([server], args, "0", mode=mode)
    spy.wait(args.duration + 30)
    summary = summarise_stacks(raw) if raw.exists() else f"py-spy: {spy.stderr.read()}"
    (out_dir / f"{name}.summary.txt").write_text(summary)
    return result, summary


def summarise_stacks(path: Path, top=30) -> str:
    """Self and inclusive sample shares per function from py-spy's raw output."""
    own, inclusive, total = {}, {}, 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [re.sub(r":\d+\)$", ")", f) for f in stack.split(";")[1:]]
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + n
        if frames:
            own[frames[-1]] = own.get(frames[-1], 0) + n
    lines = [f"{total} samples", "", "self %  function"]
    for frame, n in sorted(own.items(), key=lambda kv: -kv[1])[:top]:
        lines.append(f"{100 * n / total:6.1f}  {frame}")
    lines += ["", "incl %  function"]
    for frame, n in sorted(inclusive.items(), key=lambda kv: -kv[1])[: top * 2]:
        lines.append(f"{100 * n / total:6.1f}  {frame}")
    return "\n".join(lines) + "\n"


# -- report ------------------------------------------------------------------------


def machine() -> dict:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = re.search(r"model name\s*:\s*(.*)", cpuinfo)
    mem = re.search(r"MemTotal:\s*(\d+)", Path("/proc/meminfo").read_text())
    versions = {}
    for name in ("waitress", "pyramid", "SQLAlchemy", "psycopg", "redis", "orjson"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[name] = metadata.version(name)
    wrk = []  # the soak runs without it
    if shutil.which("wrk"):
        wrk = run(["wrk", "--version"], check=False).stdout.splitlines()[:1]
    return {
        "nproc": os.cpu_count(),
        "cpu": model.group(1) if model else "?",
        "ram_gib": round(int(mem.group(1)) / 2**20, 1) if mem else None,
        "python": platform.python_version(),
        "kernel": platform.release(),
        "packages": versions,
        "wrk": wrk[0] if wrk else "?",
    }


def status_mix(statuses: dict) -> str:
    total = sum(statuses.values()) or 1
    return " ".join(
        f"{code}:{100 * n / total:.1f}%" for code, n in sorted(statuses.items())
    )


def row(name, rps, statuses, p50_ms, p99_ms, note=""):
    return (
        f"{name:<34} {rps:>9,.0f}  {p50_ms:>7.1f}  {p99_ms:>7.1f}  "
        f"{status_mix(statuses):<28} {note}"
    )


def wrk_row(name, result, note=""):
    lat = result["latency_us"]
    # wrk counts every status >= 400 as an error: those are the 409s.
    errors = {k: v for k, v in result["errors"].items() if v and k != "status"}
    extra = f" errors={errors}" if errors else ""
    return row(
        name,
        result["rps"],
        result["statuses"],
        lat["p50"] / 1000,
        lat["p99"] / 1000,
        f"houses={result['houses']} server cpu={result['server_cpu']} "
        f"other cpu={result['other_cpu']} "
        f"cores={list(result['core_busy'].values())} idle-before="
        f"{1 - result['busy_before']:.0%} fsync-before="
        f"{result['fsync_before_ms']} ms{extra} {note}",
    )


# -- scenarios ---------------------------------------------------------------------


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--duration", type=int, default=15, help="seconds per run")
    parser.add_argument("--warmup", type=int, default=3, help="seconds, calibrates")
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="alternating rounds of hello/mix and of prodhello/prod",
    )
    for option, help_text in (
        ("--set", "an app setting of the ingest servers (to measure a variant)"),
        ("--server", "a waitress setting of every server, hello-worlds included"),
    ):
        parser.add_argument(
            option,
            action="append",
            default=[],
            type=lambda text: tuple(text.split("=", 1)),
            metavar="KEY=VALUE",
            help=help_text,
        )
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--houses", type=int, default=60, help="warm-up houses")
    parser.add_argument("--rate", type=float, default=1000.0, help="openloop req/s")
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--profile", type=Path, help="py-spy the app; output dir")
    parser.add_argument("--keep", action="store_true", help="keep the work dir")
    parser.add_argument(
        "--retries", type=int, default=2, help="re-runs when others took CPU"
    )
    parser.add_argument(
        "--max-other-cpu",
        type=float,
        default=0.1,
        help="share of the server cores others may take before a re-run",
    )
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=60,
        help="seconds to wait for an idle machine before each run",
    )
    args = parser.parse_args(argv)
    SERVER_OVERRIDES.update(dict(args.server))
    chosen = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = set(chosen) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    if (os.cpu_count() or 1) < 2:
        parser.error("needs 2 cores: the server on one, the load on the other")

    workdir = Path(tempfile.mkdtemp(prefix="stethoscope-bench-"))
    (workdir / "models").mkdir()
    results = {"machine": machine(), "settings": {}, "scenarios": {}}
    lines = []
    started = []
    try:
        hello_ini = write_ini(
            ROOT / "development.ini",
            workdir / "hello.ini",
            PORTS["hello"],
            app={"use": "call:hello_app:main"},
        )
        app_ini = write_ini(
            ROOT / "development.ini",
            workdir / "app.ini",
            PORTS["app"],
            overrides=dict(args.set),
        )
        results["settings"]["server"] = server_settings(app_ini)
        pinned_env = {"PYTHONPATH": str(TOOLS)}

        app = None
        if {"mix", "openloop", "batch"} & set(chosen) or args.profile:
            run([str(BIN / "initialize_stethoscope_db"), str(app_ini)])
            app = Server("app", app_ini, PORTS["app"], "1", workdir)
            started.append(app)

        # hello and mix alternate, both servers up and pinned to core 1 (the
        # one not measured is idle); see ``alternate``.
        hello = None
        pairs = []
        if "hello" in chosen:
            hello = Server(
                "hello", hello_ini, PORTS["hello"], "1", workdir, pinned_env, "/"
            )
            started.append(hello)
            pairs.append(("hello", Load([hello], args, "0"), False))
        if "mix" in chosen:
            pairs.append(("mix", Load([app], args, "0"), True))
        runs = alternate(pairs, args.rounds) if pairs else {}
        if hello is not None:
            hello.stop()
        if "hello" in runs:
            result, note = summarise_rounds(runs, "hello")
            results["scenarios"]["hello"] = result
            lines.append(wrk_row("hello (pinned, 1 proc)", result, note))
        if "mix" in runs:
            result, note = summarise_rounds(runs, "mix", base="hello")
            results["scenarios"]["mix"] = result
            lines.append(
                wrk_row(
                    "mix (pinned, SQLite+memory)", result, f"{note} (target >= 50%)"
                )
            )

        if "openloop" in chosen:
            _, fsync = wait_quiet(args.quiet_wait)
            os.sched_setaffinity(0, {0})
            cores = core_busy()
            try:
                loop = traffic.open_loop(PORTS["app"], args.rate, args.duration)
            finally:
                os.sched_setaffinity(0, set(range(os.cpu_count())))
            summary = loop.summary()
            summary["core_busy"] = busy_since(cores)
            summary["fsync_before_ms"] = fsync
            results["scenarios"]["openloop"] = summary
            lines.append(
                row(
                    f"openloop {args.rate:,.0f} req/s (pinned)",
                    summary["completed"] / args.duration,
                    summary["statuses"],
                    summary["p50_ms"],
                    summary["p99_ms"],
                    f"houses={summary['houses']} errors={summary['errors']} "
                    f"{summary['error_kinds'] or ''} "
                    f"max client lag={summary['max_send_lag_ms']:.1f} ms "
                    f"fsync-before={summary['fsync_before_ms']} ms "
                    f"cores={list(summary['core_busy'].values())} "
                    "(target p99 < 50 ms)",
                )
            )

        if "batch" in chosen:
            _, fsync = wait_quiet(args.quiet_wait)
            os.sched_setaffinity(0, {0})
            cores = core_busy()
            try:
                batch = traffic.batch_upload(
                    PORTS["app"], args.duration, batch_size=args.batch_size
                )
            finally:
                os.sched_setaffinity(0, set(range(os.cpu_count())))
            summary = batch.summary()
            summary["core_busy"] = busy_since(cores)
            summary["fsync_before_ms"] = fsync
            results["scenarios"]["batch"] = summary
            lines.append(
                f"{'batch ' + str(args.batch_size) + ' (pinned, SQLite)':<34} "
                f"{summary['readings_per_s']:>9,.0f}  {summary['p50_ms']:>7.1f}  "
                f"{summary['p99_ms']:>7.1f}  readings/s created={summary['created']}"
                f" dup={summary['duplicate']} rejected={summary['rejected']} "
                f"failed={summary['failed']} "
                f"cores={list(summary['core_busy'].values())} "
                "(target >= 10,000 readings/s)"
            )

        if args.profile and app is not None:
            args.profile.mkdir(parents=True, exist_ok=True)
            for name, mode in (("mix", "mix"), ("originals", "originals")):
                result, _ = profile(app, args, args.profile, name, mode)
                results["scenarios"][f"profile_{name}"] = result
                lines.append(wrk_row(f"{name} under py-spy (pinned)", result))

        if app is not None:
            results["problems_app"] = app.problems()
            app.stop()

        if {"prodhello", "prod"} & set(chosen):
            lines += production(args, workdir, results, started, chosen)
    finally:
        for server in started:
            server.stop()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)

    print()
    print(f"machine: {json.dumps(results['machine'])}")
    print(f"server:  {json.dumps(results['settings'].get('server'))}")
    print()
    print(f"{'scenario':<34} {'req/s':>9}  {'p50 ms':>7}  {'p99 ms':>7}  status mix")
    for line in lines:
        print(line)
    for key in ("problems_app", "problems_prod"):
        if results.get(key):
            print(f"{key}: {results[key]}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))
    return 0


def production(
    args, workdir: Path, results: dict, started: list, chosen: list
) -> list[str]:
    """The production layout: two application processes (PostgreSQL and
    Redis shared) and, alternating with them round by round as hello and mix
    do, two hello-world processes in the same layout (its ceiling)."""
    pg = ["-h", "127.0.0.1", "-U", "postgres"]
    redis = None
    servers, apps = [], []
    pairs = []
    try:
        if "prodhello" in chosen:
            hellos = []
            for i in (0, 1):
                name = f"prodhello{i}"
                ini = write_ini(
                    ROOT / "production.ini",
                    workdir / f"{name}.ini",
                    PORTS[name],
                    app={"use": "call:hello_app:main"},
                )
                env = {"PYTHONPATH": str(TOOLS)}
                hellos.append(Server(name, ini, PORTS[name], str(i), workdir, env, "/"))
                started.append(hellos[-1])
            servers += hellos
            pairs.append(("prodhello", Load(hellos, args, "0,1", split=True), False))
        if "prod" in chosen:
            run(["dropdb", *pg, "--if-exists", PG_DATABASE])
            run(["createdb", *pg, PG_DATABASE])
            redis = start_redis(workdir)
            apps = start_production_apps(args, workdir, results)
            started += apps
            servers += apps
            pairs.append(("prod", Load(apps, args, "0,1", split=True), True))
        runs = alternate(pairs, args.rounds)
        lines = []
        if "prodhello" in runs:
            result, note = summarise_rounds(runs, "prodhello")
            results["scenarios"]["prodhello"] = result
            lines.append(
                wrk_row("prod hello (2 procs)", result, f"{note} (the ceiling)")
            )
        if "prod" in runs:
            result, note = summarise_rounds(runs, "prod", base="prodhello")
            results["scenarios"]["prod"] = result
            results["problems_prod"] = [p for app in apps for p in app.problems()]
            lines.append(
                wrk_row(
                    "prod (2 procs, PG+Redis)",
                    result,
                    f"{note} (target >= 7,000 req/s)",
                )
            )
        return lines
    finally:
        for server in servers:
            server.stop()
        if redis is not None:
            os.killpg(redis.pid, signal.SIGTERM)
            redis.wait(10)
            if not args.keep:
                run(["dropdb", *pg, "--if-exists", PG_DATABASE], check=False)


def start_redis(workdir: Path) -> subprocess.Popen:
    """A private redis-server that keeps nothing on disk."""
    return subprocess.Popen(
        ["redis-server", "--port", str(REDIS_PORT), "--bind", "127.0.0.1"]
        + ["--save", "", "--appendonly", "no"],
        stdout=(workdir / "redis.log").open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def start_production_apps(args, workdir: Path, results: dict) -> list:
    """Two processes from production.ini, each pinned to its own core,
    sharing the benchmark's PostgreSQL database and redis-server."""
    env = {
        "DATABASE_URL": PG_URL,
        "REDIS_URL": f"redis://127.0.0.1:{REDIS_PORT}/0",
        "STETHOSCOPE_SECRET": "benchmark-only-secret-of-32-characters",
    }
    inis = [
        write_ini(
            ROOT / "production.ini",
            workdir / f"prod{i}.ini",
            PORTS[f"prod{i}"],
            overrides=dict(args.set),
        )
        for i in (0, 1)
    ]
    for ini in inis:
        parser = configparser.ConfigParser(interpolation=None)
        parser.read(ini)
        parser["app:main"]["stethoscope.model_dir"] = str(workdir / "models")
        # The traffic model posts as hundreds of gateways; giving each a
        # token is not worth it here: ingest is opened to this address,
        # and a token check is a cached dict lookup per request
        # (docs/benchmarks.md).
        parser["app:main"]["stethoscope.ingest.require_token"] = "false"
        parser["app:main"]["stethoscope.ingest.allow_ips"] = "127.0.0.1"
        with ini.open("w") as handle:
            parser.write(handle)
    results["settings"]["prod_server"] = server_settings(inis[0])
    run([str(BIN / "initialize_stethoscope_db"), str(inis[0])], env=env)
    return [
        Server(f"prod{i}", ini, PORTS[f"prod{i}"], str(i), workdir, env)
        for i, ini in enumerate(inis)
    ]


if __name__ == "__main__":
    sys.exit(main())
