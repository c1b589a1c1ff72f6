"""Health of the parts the service depends on."""

from sqlalchemy import text


class HealthService:
    def __init__(self, session, deduplicator):
        self.session = session
        self.deduplicator = deduplicator

    def check(self) -> dict:
        """Probe the database and the deduplicator; never raises."""
        try:
            self.session.execute(text("SELECT 1"))
            database = "ok"
        except Exception:
            database = "unavailable"
        return {
            "status": "ok" if database == "ok" else "unavailable",
            "database": database,
            "dedup": self.deduplicator.status(),
        }
