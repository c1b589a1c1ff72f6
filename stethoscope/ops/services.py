"""Health of the parts the service depends on."""

import threading

from sqlalchemy import text

from ..singletons import HEALTH_MEMBERS
from .schemas import Health


class DatabaseProbe:
    """``SELECT 1`` on a connection of the pool, waited for ``deadline_s`` at
    most.

    The probe runs on a thread of its own, so that a database server that
    stops answering while its host still acknowledges (a process stalled on
    its disk: no timeout of libpq's or the server's ends that wait) leaves
    /health answering "unavailable" instead of waiting with it. Checks made
    while a probe is still out wait for that one rather than start another,
    so a stuck server holds one thread and one connection, not one per
    check.
    """

    def __init__(self, engine, deadline_s: float):
        self.engine = engine
        self.deadline_s = deadline_s
        self._lock = threading.Lock()
        self._out: tuple[threading.Event, list] | None = None

    def __call__(self) -> bool:
        """Whether the database answered within the deadline."""
        with self._lock:
            if self._out is None:
                self._out = (threading.Event(), [])
                threading.Thread(
                    target=self._probe,
                    args=self._out,
                    name="stethoscope-health-probe",
                    # A stuck probe must not keep the process from exiting.
                    daemon=True,
                ).start()
            done, answer = self._out
        if not done.wait(self.deadline_s):
            return False
        return answer[0]

    def _probe(self, done: threading.Event, answer: list) -> None:
        try:
            with self.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
            answer.append(True)
        except Exception:
            answer.append(False)
        finally:
            with self._lock:
                self._out = None
            done.set()


def add_health_member(config, name: str, member) -> None:
    """Have /health report ``member(registry)`` (a dict) as ``name``.

    How a feature tells ops what to report of itself (ingest: its
    deduplicator as ``dedup``): ops imports no feature. A member never
    raises and answers within its own timeouts; the status follows the
    database alone.
    """
    config.registry.setdefault(HEALTH_MEMBERS, {})[name] = member


class HealthService:
    def __init__(self, probe, registry):
        self.probe = probe
        self.registry = registry

    def check(self) -> Health:
        """Probe the database and ask every member; never raises, never
        waits longer than the probe's deadline (and the members' own)."""
        database = "ok" if self.probe() else "unavailable"
        members = self.registry.get(HEALTH_MEMBERS, {})
        return Health(
            status=database,
            database=database,
            **{name: member(self.registry) for name, member in members.items()},
        )
