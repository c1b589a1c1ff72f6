"""What the device pages add to the registry's rows: how each beacon is
heard now (by how many badges, and whether its signal is rising or falling).

Read from the readings of the last two windows in one indexed range query
(ix_readings_observed_at): a house of 50 badges stores about one reading a
badge every 5 s, so two 5-minute windows are some 6,000 small rows, a few
milliseconds to tally, cheap enough for a page that people open, not poll.
"""

import dataclasses
import datetime
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..db import utcnow
from ..ingest.models import Reading
from ..schemas import NOT_HEARD

# One window: long enough that every badge in range has reported a few
# times (a badge updates every ~5 s), short enough to be "now".
WINDOW = datetime.timedelta(minutes=5)
# A change of mean RSSI smaller than this is noise (a person walking past
# moves a reading by 3-5 dB), not a trend.
TREND_DB = 3.0


@dataclasses.dataclass
class BeaconHearing:
    """How a beacon was heard in the last window, and the one before it."""

    badges: set[str] = dataclasses.field(default_factory=set)
    rssi_sum: int = 0
    rssi_count: int = 0
    before_sum: int = 0
    before_count: int = 0

    @property
    def mean(self) -> float | None:
        return self.rssi_sum / self.rssi_count if self.rssi_count else None

    @property
    def trend(self) -> float | None:
        """Mean dBm now minus the window before; None unless heard in both."""
        if not (self.rssi_count and self.before_count):
            return None
        return self.mean - self.before_sum / self.before_count


class BeaconActivity:
    """Tallies the recent readings by beacon."""

    def __init__(self, session: Session, clock: Callable = utcnow):
        self.session = session
        self.clock = clock

    def recent(self) -> dict[str, BeaconHearing]:
        """Each beacon heard in the last two windows, by its id."""
        now = self.clock()
        start, split = now - 2 * WINDOW, now - WINDOW
        rows = self.session.execute(
            select(Reading.badge_id, Reading.observed_at, Reading.beacons).where(
                Reading.observed_at >= start
            )
        )
        hearings: dict[str, BeaconHearing] = {}
        for badge_id, observed_at, beacons in rows:
            latest = observed_at >= split
            for beacon_id, rssi in beacons.items():
                if rssi <= NOT_HEARD:
                    continue
                hearing = hearings.setdefault(beacon_id, BeaconHearing())
                if latest:
                    hearing.badges.add(badge_id)
                    hearing.rssi_sum += rssi
                    hearing.rssi_count += 1
                else:
                    hearing.before_sum += rssi
                    hearing.before_count += 1
        return hearings


def trend_text(trend: float | None) -> str:
    """``rising (+4 dB)``, ``falling (-6 dB)``, ``steady``, or empty."""
    if trend is None:
        return ""
    if trend >= TREND_DB:
        return f"rising (+{trend:.0f} dB)"
    if trend <= -TREND_DB:
        return f"falling ({trend:.0f} dB)"
    return "steady"
