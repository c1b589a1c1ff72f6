"""Alerts that open and clear by themselves, and who is told.

``AlertEvaluator`` (one per process) evaluates a site in two steps:

- ``observe``: the conditions that hold now (``conditions.py``) and where
  locating places each badge, in a short read session of its own. The
  locating work (a model call per badge window) is done here, outside any
  write lock: on SQLite a write transaction stops ingest.
- ``apply``: in one write transaction, under the site's lock (a
  PostgreSQL advisory transaction lock; SQLite's write transactions are
  serialised already), the stays are brought up to date, alerts whose
  condition is new are opened and those whose condition is gone are
  cleared. The open alerts are read under the lock, so two processes
  evaluating at once open one alert, not two (and the partial unique index
  ``uq_alerts_open`` would refuse a second). An observation older than the
  site's last applied evaluation is dropped: applied after a newer one it
  would reopen what that one cleared.

The webhook is told of each alert opened after the commit, from a thread
of its own, with a short timeout: a slow or failing chat server costs the
evaluation nothing, and a failure is logged, not raised.

``AlertService`` (per request) evaluates when due (at most every
``interval_seconds`` per process and site) and lists alerts. It reads in a
fresh session: the request's may have begun its snapshot (a session
cookie looked up) before the evaluation committed.
"""

import datetime
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from ..db import Database, advisory_lock, utcnow
from ..errors import NotFound, ServiceError
from ..notify import WebhookNotifier
from ..registry.models import Badge, Site
from . import conditions as c
from .models import Alert, AlertStay
from .schemas import AlertOut

log = logging.getLogger(__name__)

# The first key of the two-key advisory lock taken while applying a site's
# evaluation (learning's model versions use "MV", training runs "TR").
ADVISORY_LOCK_CLASS = 0x414C  # "AL"


def open_counts(database: Database) -> dict[tuple[str], int]:
    """Open alerts by kind, every kind named (0 for none): /metrics."""
    with database.session(write=False) as session:
        counts = dict.fromkeys(c.KINDS, 0)
        counts.update(
            session.execute(
                select(Alert.kind, func.count())
                .where(Alert.cleared_at.is_(None))
                .group_by(Alert.kind)
            ).all()
        )
    return {(kind,): count for kind, count in counts.items()}


@dataclass(frozen=True)
class Observation:
    """What ``observe`` saw of a site at ``at``."""

    site_id: str
    at: datetime.datetime
    conditions: tuple[c.Condition, ...]
    # None when locating could not place badges (no active model).
    placed: tuple[c.Observed, ...] | None


def _no_locating(session: Session, clock: Callable) -> None:
    return None


class AlertEvaluator:
    """Evaluates sites' alerts; one per process (``maybe_evaluate`` keeps
    its per-site timers)."""

    def __init__(
        self,
        database: Database,
        settings: c.AlertSettings,
        *,
        active_models=None,
        locating: Callable = _no_locating,
        notifier: WebhookNotifier | None = None,
        clock: Callable[[], datetime.datetime] = utcnow,
        monotonic: Callable[[], float] = time.monotonic,
    ):
        self.database = database
        self.settings = settings
        self.active_models = active_models
        # locating(session, clock) -> a LocatingService (or None).
        self.locating = locating
        self.notifier = notifier or WebhookNotifier(None)
        self.clock = clock
        self.monotonic = monotonic
        self._lock = threading.Lock()
        self._due: dict[str, float] = {}
        self._running: set[str] = set()

    # -- the two steps -----------------------------------------------------

    def observe(self, site_id: str) -> Observation:
        """The conditions at the site now, read without writing."""
        now = self.clock()
        with self.database.session(write=False) as session:
            site = session.get(Site, site_id)
            if site is None:
                raise NotFound(f"no site {site_id}")
            loaded = self.active_models.get(site_id) if self.active_models else None
            vocabulary = None if loaded is None else loaded.model.vocabulary.beacons
            known = None if loaded is None else (loaded.version_id, vocabulary)
            found = [
                *c.gateway_conditions(session, site, now, self.settings),
                *c.beacon_conditions(session, site, now, self.settings),
                *c.imposter_conditions(session, site, now, self.settings, vocabulary),
                *c.model_conditions(session, site, now, self.settings, known),
                *c.badge_conditions(session, site, now, self.settings),
            ]
            placed = self._placed(session, site_id)
        return Observation(site_id, now, tuple(found), placed)

    def _placed(self, session: Session, site_id: str):
        service = self.locating(session, self.clock)
        if service is None:
            return None
        try:
            occupancy = service.occupancy(site_id, with_wearers=False)
        except ServiceError:  # no active model (503), or the site went
            return None
        return tuple(
            c.Observed(
                badge.badge_id,
                room.room_id,
                room.room_name,
                datetime.datetime.fromisoformat(badge.since),
            )
            for room in occupancy.rooms
            for badge in room.badges
        )

    def apply(self, observation: Observation) -> list[Alert]:
        """Open and clear the site's alerts as ``observation`` says, in one
        transaction; then tell the webhook of those opened. Returns them."""
        site_id, now = observation.site_id, observation.at
        session = self.database.session(write=True)
        with self.database.write_turn, session, session.begin():
            advisory_lock(session, ADVISORY_LOCK_CLASS, [site_id])
            latest = session.scalar(
                select(func.max(Alert.last_checked_at)).where(Alert.site_id == site_id)
            )
            if latest is not None and latest > now:
                return []
            found = {
                condition.key: condition
                for condition in (
                    *observation.conditions,
                    *self._stays(session, site_id, now, observation.placed),
                )
            }
            opened = []
            for alert in session.scalars(
                select(Alert).where(
                    Alert.site_id == site_id, Alert.cleared_at.is_(None)
                )
            ):
                condition = found.pop((alert.kind, alert.subject), None)
                alert.last_checked_at = now
                if condition is None:
                    alert.cleared_at = now
                else:
                    alert.details = {**condition.details, "message": condition.message}
            for condition in found.values():
                alert = Alert(
                    site_id=site_id,
                    kind=condition.kind,
                    subject=condition.subject,
                    opened_at=now,
                    last_checked_at=now,
                    details={**condition.details, "message": condition.message},
                )
                session.add(alert)
                opened.append(alert)
        if opened:
            self.notifier.notify(
                [
                    f"{alert.details['message']}. {c.ADVICE[alert.kind]}"
                    for alert in opened
                ]
            )
        return opened

    def _stays(self, session, site_id, now, placed) -> list[c.Condition]:
        """Bring the site's watched stays up to date with ``placed``; the
        long-stay conditions they make."""
        stays = {
            stay.badge_id: stay
            for stay in session.scalars(
                select(AlertStay).where(AlertStay.site_id == site_id)
            )
        }
        current = []
        for seen in placed or ():
            stay = stays.pop(seen.badge_id, None)
            # In the same room since before the last look: the stay goes on.
            # Otherwise it began when locating says, which reaches back only
            # as far as its window: after a longer gap between evaluations
            # nothing is known of the time between.
            if (
                stay is not None
                and stay.room_id == seen.room_id
                and seen.since <= stay.checked_at
            ):
                stay.checked_at = now
            elif stay is not None:
                stay.room_id, stay.since, stay.checked_at = (
                    seen.room_id,
                    seen.since,
                    now,
                )
            else:
                stay = AlertStay(
                    badge_id=seen.badge_id,
                    site_id=site_id,
                    room_id=seen.room_id,
                    since=seen.since,
                    checked_at=now,
                )
                session.add(stay)
            current.append((stay.badge_id, stay.room_id, stay.since))
        if stays:
            session.execute(
                delete(AlertStay).where(AlertStay.badge_id.in_(list(stays)))
            )
        return c.stay_conditions(current, c.room_limits(session, site_id), now)

    # -- when ----------------------------------------------------------------

    def evaluate(self, site_id: str) -> list[Alert]:
        """Observe and apply now; the alerts opened."""
        return self.apply(self.observe(site_id))

    def site_ids(self) -> list[str]:
        with self.database.session(write=False) as session:
            return list(session.scalars(select(Site.id).order_by(Site.id)))

    def maybe_evaluate(self, site_ids: Sequence[str] | None = None) -> None:
        """Evaluate each site whose last evaluation in this process is at
        least ``interval_seconds`` old and that no other thread is
        evaluating. A failure is logged: the alerts stored are still served."""
        for site_id in self.site_ids() if site_ids is None else site_ids:
            with self._lock:
                if site_id in self._running or self.monotonic() < self._due.get(
                    site_id, float("-inf")
                ):
                    continue
                self._running.add(site_id)
                self._due[site_id] = self.monotonic() + self.settings.interval_seconds
            try:
                self.evaluate(site_id)
            except Exception:
                log.exception("could not evaluate the alerts of site %s", site_id)
            finally:
                with self._lock:
                    self._running.discard(site_id)


STATES = ("open", "cleared", "all")
# Alerts listed at most, newest first.
LIMIT = 200


def _newest(site_id: str | None, *columns):
    """Alerts (of ``site_id``), newest first."""
    query = select(*(columns or (Alert,))).order_by(
        Alert.opened_at.desc(), Alert.id.desc()
    )
    return query if site_id is None else query.where(Alert.site_id == site_id)


class AlertService:
    """The alerts of sites, evaluated when due."""

    def __init__(self, database: Database, evaluator: AlertEvaluator):
        self.database = database
        self.evaluator = evaluator

    def alerts(
        self,
        site_id: str | None = None,
        *,
        state: str = "open",
        limit: int = LIMIT,
        with_wearers: bool = False,
    ) -> list[AlertOut]:
        """Alerts (of ``site_id``) in ``state``, newest first, after an
        evaluation if one is due. Wearers' names only ``with_wearers``.
        NotFound for an unknown site."""
        self._evaluate(site_id)
        query = _newest(site_id)
        if state == "open":
            query = query.where(Alert.cleared_at.is_(None))
        elif state == "cleared":
            query = query.where(Alert.cleared_at.is_not(None))
        return self._read(query.limit(limit), with_wearers)

    def open_and_cleared(
        self, *, cleared_limit: int, with_wearers: bool = False
    ) -> tuple[list[AlertOut], list[AlertOut]]:
        """The open alerts and the newest cleared ones of every site, after
        one evaluation if one is due, read in one statement: read apart, an
        alert cleared between the two reads would be listed as both."""
        self._evaluate(None)
        open_ids = _newest(None, Alert.id).where(Alert.cleared_at.is_(None))
        cleared_ids = _newest(None, Alert.id).where(Alert.cleared_at.is_not(None))
        alerts = self._read(
            _newest(None).where(
                Alert.id.in_(open_ids.limit(LIMIT))
                | Alert.id.in_(cleared_ids.limit(cleared_limit))
            ),
            with_wearers,
        )
        return (
            [a for a in alerts if a.cleared_at is None],
            [a for a in alerts if a.cleared_at is not None],
        )

    def _evaluate(self, site_id: str | None) -> None:
        if site_id is not None:
            with self.database.session(write=False) as session:
                if session.get(Site, site_id) is None:
                    raise NotFound(f"no site {site_id}")
        self.evaluator.maybe_evaluate(None if site_id is None else [site_id])

    def _read(self, query, with_wearers: bool) -> list[AlertOut]:
        with self.database.session(write=False) as session:
            alerts = list(session.scalars(query))
            wearers = {}
            if with_wearers:
                badges = {a.subject for a in alerts if a.kind in c.BADGE_KINDS}
                wearers = dict(
                    session.execute(
                        select(Badge.id, Badge.wearer).where(Badge.id.in_(badges))
                    ).all()
                )
        return [
            AlertOut.of(
                alert,
                wearers.get(alert.subject) if alert.kind in c.BADGE_KINDS else None,
            )
            for alert in alerts
        ]

    def open_alerts(self, site_id: str, *, with_wearers: bool = False):
        """The site's open alerts, newest first (for pages)."""
        return self.alerts(site_id, state="open", with_wearers=with_wearers)
