"""The badges' cadence: an update every 5 s, an advertisement every second.

At each update a badge has listened for ``radio.samples`` seconds; for
each beacon it keeps the strongest sample, and of those the ``MAX_PAYLOAD``
strongest heard above the sensitivity floor. It then advertises that
payload once a second until its next update, and each gateway hears each
advertisement with a probability that falls with the badge's signal at
the gateway (distance, walls, floors).

Everything is computed for all badges at once, one update (5 s) at a time,
so memory stays bounded however long the simulation runs. Badges update at
their own phase within the 5 s, in badge order, so records come out in
time order. Given the same house, badges and seed the output is the same:
movement, beacon radio and gateway radio draw from separate streams, so
asking for advertisements does not change the readings.
"""

import datetime
import heapq
import math
from collections.abc import Iterator
from typing import NamedTuple

import numpy as np

from ..ingest.schemas import NOT_HEARD, RSSI_MAX
from .house import House
from .movement import Walkers
from .radio import RadioModel, distances, wall_counts

UPDATE_SECONDS = 5
# Advertisements per update: one a second, the first at the update itself.
ADVERTS_PER_UPDATE = 5
# What a badge's payload holds at most (the advertisement's size).
MAX_PAYLOAD = 8
DEFAULT_START = datetime.datetime(2025, 1, 6, 7, 0, tzinfo=datetime.UTC)
_LAST = datetime.datetime.max.replace(tzinfo=datetime.UTC)
# badge_strength, as ingest takes it (-128 would read as "not heard").
_STRENGTH_MIN, _STRENGTH_MAX = NOT_HEARD + 1, 127


class LabelledReading(NamedTuple):
    """One badge update: what it heard, and where it truly was (``room_id``
    None when the row is to be left unlabelled)."""

    observed_at: datetime.datetime
    badge_id: str
    room_id: str | None
    beacons: dict[str, int]


class Advertisement(NamedTuple):
    """One advertisement and the gateways that heard it, with the badge's
    strength at each (dBm). ``room_id`` is the truth, always given."""

    sent_at: datetime.datetime
    badge_id: str
    room_id: str
    beacons: dict[str, int]
    heard_by: dict[str, int]


class Update(NamedTuple):
    """One update of every badge, as arrays indexed by badge."""

    index: int
    offsets: np.ndarray  # seconds since the start
    rooms: np.ndarray  # index into house.rooms
    rssi: np.ndarray  # (badges, beacons) int16; NOT_HEARD = not in the payload
    labelled: np.ndarray  # bool
    x: np.ndarray
    y: np.ndarray


def _payload_dicts(rssi: np.ndarray, beacon_ids: list[str]) -> list[dict[str, int]]:
    """Each row of ``rssi`` as beacon id → dBm, heard beacons only."""
    rows, columns = np.nonzero(rssi != NOT_HEARD)
    values = rssi[rows, columns].tolist()
    names = [beacon_ids[column] for column in columns.tolist()]
    ends = np.cumsum(np.bincount(rows, minlength=len(rssi))).tolist()
    dicts = []
    begin = 0
    for end in ends:
        dicts.append(dict(zip(names[begin:end], values[begin:end], strict=True)))
        begin = end
    return dicts


def _delta(offset: float) -> datetime.timedelta:
    return datetime.timedelta(milliseconds=round(float(offset) * 1000))


def _aware(start: datetime.datetime) -> datetime.datetime:
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware")
    return start.astimezone(datetime.UTC)


class Simulation:
    """Badges walking about ``house``; iterate ``updates()``.

    ``badges`` defaults to the house's own number; ``unlabelled_share`` is
    the chance that a stay in a room is left unlabelled (whole stays, as
    when nobody was recording).
    """

    def __init__(
        self,
        house: House,
        *,
        badges: int | None = None,
        seed: int = 0,
        radio: RadioModel | None = None,
        unlabelled_share: float = 0.0,
    ):
        if not 0.0 <= unlabelled_share <= 1.0:
            raise ValueError("unlabelled_share must be between 0 and 1")
        self.house = house
        self.radio = radio or RadioModel()
        count = house.default_badges if badges is None else badges
        if count < 1:
            raise ValueError("at least one badge")
        self.badge_ids = house.badge_ids(count)
        self.beacon_ids = [beacon.id for beacon in house.beacons]
        self.gateway_ids = [gateway.id for gateway in house.gateways]
        self.unlabelled_share = unlabelled_share
        move, beacon_radio, gateway_radio, phase = (
            np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(4)
        )
        self._radio_rng = beacon_radio
        self._gateway_rng = gateway_radio
        # Whole milliseconds keep timestamps short; sorted, so that within
        # an update badges come in time order.
        self.phases = np.sort(np.round(phase.random(count) * UPDATE_SECONDS, 3))
        self.walkers = Walkers(house, count, move, UPDATE_SECONDS)
        self._walls = wall_counts(house, house.beacons)
        self._gateway_walls = wall_counts(house, house.gateways)
        self._beacon_floors = np.array([b.floor for b in house.beacons])
        self._gateway_floors = np.array([g.floor for g in house.gateways])
        self._body = np.zeros((count, len(self.beacon_ids)))
        self._labelled = np.ones(count, dtype=bool)
        # Devices out of action: a silent beacon is in nobody's payload, a
        # silent gateway hears nothing. Read at each update, so that they
        # can be switched while a live run goes on.
        self._silent_beacons = np.zeros(len(self.beacon_ids), dtype=bool)
        self._silent_gateways = np.zeros(len(self.gateway_ids), dtype=bool)

    def set_silent(self, device_id: str, silent: bool = True) -> str:
        """Silence the beacon or gateway ``device_id`` (or, ``silent``
        False, bring it back) from the next update computed on; returns which it is,
        "beacon" or "gateway". ValueError for an id of neither.

        The random draws are the same either way: everything else goes on
        as it would have (a silent beacon's place in a payload goes to the
        next strongest)."""
        for kind, ids, flags in (
            ("beacon", self.beacon_ids, self._silent_beacons),
            ("gateway", self.gateway_ids, self._silent_gateways),
        ):
            if device_id in ids:
                flags[ids.index(device_id)] = silent
                return kind
        raise ValueError(f"no beacon or gateway {device_id!r} in {self.house.name}")

    @property
    def silent(self) -> frozenset[str]:
        """The ids of the beacons and gateways silenced now."""
        return frozenset(
            device_id
            for ids, flags in (
                (self.beacon_ids, self._silent_beacons),
                (self.gateway_ids, self._silent_gateways),
            )
            for device_id, silent in zip(ids, flags.tolist(), strict=True)
            if silent
        )

    def updates(self) -> Iterator[Update]:
        """Every badge's updates, one step (5 s) at a time, for ever."""
        index = 0
        walkers = self.walkers
        while True:
            if index:
                walkers.step()
            self._entered(walkers.entered)
            yield Update(
                index,
                index * UPDATE_SECONDS + self.phases,
                walkers.room.copy(),
                self._payloads(walkers.room, walkers.x, walkers.y),
                self._labelled.copy(),
                walkers.x.copy(),
                walkers.y.copy(),
            )
            index += 1

    def _entered(self, entered: np.ndarray) -> None:
        """New stays: fresh body fading, and labelled or not."""
        count = int(entered.sum())
        if not count:
            return
        rng = self._radio_rng
        self._body[entered] = self.radio.body_db * rng.standard_normal(
            (count, len(self.beacon_ids))
        )
        if self.unlabelled_share:
            self._labelled[entered] = rng.random(count) >= self.unlabelled_share

    def _payloads(self, rooms, x, y) -> np.ndarray:
        house, radio = self.house, self.radio
        floors = house.room_floors[rooms]
        mean = (
            radio.mean_rssi(
                distances(x, y, floors, house.beacons),
                self._walls[rooms],
                floors[:, None] - self._beacon_floors,
            )
            + self._body
        )
        # The strongest of n samples mean + s*z is mean + s*max(z); samples
        # first, so that the maximum runs over contiguous rows.
        noise = np.maximum.reduce(
            self._radio_rng.standard_normal(
                (radio.samples, *mean.shape), dtype=np.float32
            )
        )
        strongest = mean + radio.shadowing_db * noise
        heard = (strongest >= radio.sensitivity_dbm) & ~self._silent_beacons
        count = strongest.shape[1]
        if count > MAX_PAYLOAD:
            ranked = np.where(heard, strongest, -np.inf)
            top = np.argpartition(ranked, count - MAX_PAYLOAD, axis=1)[
                :, count - MAX_PAYLOAD :
            ]
            keep = np.zeros_like(heard)
            np.put_along_axis(keep, top, True, axis=1)
            heard &= keep
        rssi = np.clip(np.rint(strongest), NOT_HEARD + 1, RSSI_MAX)
        return np.where(heard, rssi, NOT_HEARD).astype(np.int16)

    def payloads(self, update: Update) -> list[dict[str, int]]:
        """Each badge's payload at ``update``, as beacon id → dBm."""
        return _payload_dicts(update.rssi, self.beacon_ids)

    def update_adverts(self, update: Update) -> Iterator[tuple[float, Advertisement]]:
        """The advertisements of one update, badge by badge, as (offset in
        seconds from the start, advertisement with ``sent_at`` None), with
        the gateways that heard each."""
        house, radio = self.house, self.radio
        rng = self._gateway_rng
        rooms = update.rooms
        floors = house.room_floors[rooms]
        mean = radio.mean_rssi(
            distances(update.x, update.y, floors, house.gateways),
            self._gateway_walls[rooms],
            floors[:, None] - self._gateway_floors,
        )
        shape = (len(rooms), ADVERTS_PER_UPDATE, len(self.gateway_ids))
        heard = rng.random(shape) < radio.hear_probability(mean)[:, None, :]
        heard &= ~self._silent_gateways
        strength = np.clip(
            np.rint(mean[:, None, :] + radio.shadowing_db * rng.standard_normal(shape)),
            _STRENGTH_MIN,
            _STRENGTH_MAX,
        ).astype(np.int64)
        payloads = self.payloads(update)
        for badge, badge_id in enumerate(self.badge_ids):
            room_id = house.rooms[rooms[badge]].id
            for advert in range(ADVERTS_PER_UPDATE):
                heard_by = {
                    self.gateway_ids[g]: int(strength[badge, advert, g])
                    for g in np.flatnonzero(heard[badge, advert])
                }
                yield (
                    float(update.offsets[badge]) + advert,
                    Advertisement(None, badge_id, room_id, payloads[badge], heard_by),
                )


def run_seconds(badges: int, seconds: float | None, readings: int | None) -> float:
    """The simulated time ``schedule`` covers at most: ``seconds``, or the
    updates ``readings`` records of ``badges`` badges take, the shorter."""
    lengths = [] if seconds is None else [float(seconds)]
    if readings is not None:
        lengths.append(math.ceil(readings / badges) * UPDATE_SECONDS)
    return min(lengths)


def schedule(
    simulation: Simulation,
    start: datetime.datetime,
    seconds: float | None,
    readings: int | None,
) -> Iterator[tuple[Update, list[datetime.datetime]]]:
    """Each update with the times of its first badges still within
    ``seconds`` of simulated time and ``readings`` records in all."""
    if seconds is None and readings is None:
        raise ValueError("give seconds or readings (or both)")
    start = _aware(start)
    # One datetime addition per record: the step's start plus the phase.
    phases = [_delta(phase) for phase in simulation.phases]
    # Refused now rather than failing with OverflowError part-way through.
    room = (_LAST - start).total_seconds()
    if run_seconds(len(phases), seconds, readings) > room:
        raise ValueError("the simulated time would run past the year 9999")
    left = readings
    for update in simulation.updates():
        count = len(phases)
        if seconds is not None:
            count = int(np.searchsorted(update.offsets, seconds, side="left"))
        if left is not None:
            count = min(count, left)
            left -= count
        if count <= 0:
            return
        step_start = start + datetime.timedelta(seconds=update.index * UPDATE_SECONDS)
        yield update, [step_start + phase for phase in phases[:count]]
        if count < len(phases):
            return


class LabelledRun(NamedTuple):
    """A run of labelled readings: its simulation, its start (UTC) and its
    steps, each update with the times of the badges it covers."""

    simulation: Simulation
    start: datetime.datetime
    steps: Iterator[tuple[Update, list[datetime.datetime]]]


def labelled_run(
    house: House,
    *,
    badges: int | None = None,
    start: datetime.datetime = DEFAULT_START,
    seconds: float | None = None,
    readings: int | None = None,
    seed: int = 0,
    unlabelled_share: float = 0.0,
    radio: RadioModel | None = None,
) -> LabelledRun:
    """The run ``labelled_readings`` and ``csvout.write_csv`` give, one
    record per badge update: these are their options.

    Stops after ``seconds`` of simulated time from ``start`` (updates at
    offsets below it) or after ``readings`` records, whichever comes first;
    give at least one. Deterministic for a ``seed``.
    """
    simulation = Simulation(
        house, badges=badges, seed=seed, radio=radio, unlabelled_share=unlabelled_share
    )
    start = _aware(start)
    return LabelledRun(
        simulation, start, schedule(simulation, start, seconds, readings)
    )


def labelled_readings(house: House, **options) -> Iterator[LabelledReading]:
    """One record per badge update, in time order, with its true room;
    ``options`` as ``labelled_run`` takes them."""
    simulation, _start, steps = labelled_run(house, **options)
    rooms = [room.id for room in house.rooms]
    for update, moments in steps:
        payloads = simulation.payloads(update)
        for badge, moment in enumerate(moments):
            yield LabelledReading(
                moment,
                simulation.badge_ids[badge],
                rooms[update.rooms[badge]] if update.labelled[badge] else None,
                payloads[badge],
            )


def advertisements(
    house: House,
    *,
    badges: int | None = None,
    start: datetime.datetime = DEFAULT_START,
    seconds: float,
    seed: int = 0,
    radio: RadioModel | None = None,
) -> Iterator[Advertisement]:
    """Every advertisement sent in ``seconds`` of simulated time, in time
    order, with the gateways that heard it.

    The same seed gives the same walk and payloads as ``labelled_readings``.
    """
    start = _aware(start)
    simulation = Simulation(house, badges=badges, seed=seed, radio=radio)
    for offset, advert in time_ordered(simulation, seconds):
        yield advert._replace(sent_at=start + _delta(offset))


def time_ordered(
    simulation: Simulation, seconds: float | None
) -> Iterator[tuple[float, Advertisement]]:
    """(offset, advertisement) of ``simulation`` in time order, up to
    ``seconds`` of simulated time (None: for ever)."""
    pending: list[tuple[float, int, Advertisement]] = []
    sequence = 0
    for update in simulation.updates():
        horizon = update.index * UPDATE_SECONDS
        done = seconds is not None and horizon >= seconds
        # An update sends nothing before its own step began, so whatever is
        # pending from earlier before this step's start can go now.
        while pending and (done or pending[0][0] < horizon):
            offset, _, advert = heapq.heappop(pending)
            if seconds is None or offset < seconds:
                yield offset, advert
        if done:
            return
        for offset, advert in simulation.update_adverts(update):
            heapq.heappush(pending, (offset, sequence, advert))
            sequence += 1
