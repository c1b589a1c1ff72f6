"""Live posting without a server: it waits quietly and still ends cleanly."""

import io
import socket

import pytest

from stethoscope.simulate.house import demo_house
from stethoscope.simulate.live import Counts, LiveRunner


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_an_unreachable_server_is_waited_for_not_fatal():
    out = io.StringIO()
    runner = LiveRunner(
        demo_house(),
        f"http://127.0.0.1:{closed_port()}",
        speed=20,
        duration=20,
        timeout=1,
        max_age=1,
        out=out,
    )
    counts = runner.run().snapshot()
    assert counts["posts"] == 0
    assert counts["unreachable"] > 0
    assert counts["dropped"] > 0
    assert all(not poster.is_alive() for poster in runner.posters.values())
    # Said once, not once per attempt.
    assert out.getvalue().count("waiting for") == 1


@pytest.mark.parametrize("url", ["ftp://example.org", "localhost:6543", "http://"])
def test_a_bad_url_is_refused(url):
    with pytest.raises(ValueError):
        LiveRunner(demo_house(), url)


def test_commands_silence_and_restore_devices_and_answer_each_line():
    out = io.StringIO()
    runner = LiveRunner(demo_house(), "http://127.0.0.1:9", out=out)
    runner.follow_commands(
        [
            "silence pi-hall\n",
            "silence bcn-hall\n",
            "\n",
            "restore bcn-hall\n",
            "silence demo-badge-001\n",
            "unplug pi-hall\n",
        ]
    ).join(timeout=10)
    assert out.getvalue().splitlines() == [
        "simulate: gateway pi-hall silenced",
        "simulate: beacon bcn-hall silenced",
        "simulate: beacon bcn-hall restored",
        "simulate: no beacon or gateway 'demo-badge-001' in Demo care home",
        "simulate: not a command: 'unplug pi-hall' (silence ID, restore ID)",
    ]
    assert runner.simulation.silent == {"pi-hall"}


def test_the_counts_line_names_each_outcome_in_order():
    counts = Counts()
    counts.add("posts", 1200)
    counts.add("created", 1000)
    counts.add("duplicates", 200)
    counts.add("retried")
    assert counts.line() == (
        "1,200 posts: 1,000 stored (201), 200 duplicates (409), 1 retried, "
        "0 rejected, 0 unreachable, 0 dropped"
    )
    with pytest.raises(KeyError):
        counts.add("stored")
