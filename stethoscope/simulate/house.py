"""The house: floors, rectangular rooms with doors between them, and where
the beacons and gateways are.

Coordinates are metres on each floor's plan; floors are ``FLOOR_HEIGHT``
apart. Rooms on one floor do not overlap; a point in no room is outside
(garden, a lift shaft), and the edge of every room is a wall. Adjacency is
what a person can walk through (a door, the stairs), given both ways round.
"""

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np

FLOOR_HEIGHT = 3.0

BEDROOM = "bedroom"
LOUNGE = "lounge"
DINING = "dining"
KITCHEN = "kitchen"
BATHROOM = "bathroom"
CORRIDOR = "corridor"
KINDS = (BEDROOM, LOUNGE, DINING, KITCHEN, BATHROOM, CORRIDOR)


@dataclass(frozen=True)
class Room:
    """A rectangle ``(x0, y0)``-``(x1, y1)`` on ``floor``; ``kind`` sets how
    long people stay (see movement.py)."""

    id: str
    name: str
    floor: int
    x0: float
    y0: float
    x1: float
    y1: float
    kind: str

    def __post_init__(self):
        if not (self.x0 < self.x1 and self.y0 < self.y1):
            raise ValueError(f"room {self.id}: empty rectangle")
        if self.kind not in KINDS:
            raise ValueError(f"room {self.id}: unknown kind {self.kind!r}")

    @property
    def centre(self) -> tuple[float, float]:
        return ((self.x0 + self.x1) / 2, (self.y0 + self.y1) / 2)

    def contains(self, x: float, y: float) -> bool:
        return self.x0 <= x <= self.x1 and self.y0 <= y <= self.y1


@dataclass(frozen=True)
class Device:
    """A beacon or a gateway: fixed at ``(x, y)`` on ``floor``, in ``room_id``."""

    id: str
    name: str
    room_id: str
    floor: int
    x: float
    y: float


@dataclass
class House:
    """A site: its rooms, doors, beacons and gateways, and its badges' ids."""

    site_id: str
    name: str
    timezone: str
    rooms: list[Room]
    doors: list[tuple[str, str]]
    beacons: list[Device]
    gateways: list[Device]
    badge_prefix: str
    default_badges: int
    wearer_prefix: str = "Demo resident"

    def __post_init__(self):
        ids = [room.id for room in self.rooms]
        if len(set(ids)) != len(ids):
            raise ValueError("room ids must be unique")
        for a, b in self.doors:
            if a == b or a not in self.index or b not in self.index:
                raise ValueError(f"bad door {a}-{b}")
        for device in [*self.beacons, *self.gateways]:
            room = self.rooms[self.index[device.room_id]]
            if room.floor != device.floor or not room.contains(device.x, device.y):
                raise ValueError(f"{device.id} is not inside room {room.id}")
        lonely = [room.id for room in self.rooms if not self.adjacent[room.id]]
        if len(self.rooms) > 1 and lonely:
            raise ValueError(f"rooms without a door: {', '.join(lonely)}")

    @cached_property
    def index(self) -> dict[str, int]:
        """Room id → position in ``rooms`` (and in the arrays below)."""
        return {room.id: i for i, room in enumerate(self.rooms)}

    @cached_property
    def adjacent(self) -> dict[str, list[str]]:
        """Room id → the rooms one door away, sorted."""
        pairs = {room.id: set() for room in self.rooms}
        for a, b in self.doors:
            pairs[a].add(b)
            pairs[b].add(a)
        return {room_id: sorted(others) for room_id, others in pairs.items()}

    def badge_ids(self, count: int) -> list[str]:
        """The ids of the first ``count`` badges: the same in every command
        whatever the count, so ``setup`` names the badges ``live`` moves."""
        return [f"{self.badge_prefix}{n:03d}" for n in range(1, count + 1)]

    def wearer(self, number: int) -> str:
        return f"{self.wearer_prefix} {number}"

    @cached_property
    def room_floors(self) -> np.ndarray:
        return np.array([room.floor for room in self.rooms], dtype=np.int64)

    @cached_property
    def room_boxes(self) -> np.ndarray:
        """(rooms, 4): x0, y0, x1, y1."""
        return np.array(
            [(r.x0, r.y0, r.x1, r.y1) for r in self.rooms], dtype=np.float64
        )

    def room_at(self, floor: int, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Index of the room holding each point of ``floor``, -1 when outside.

        A point on a shared wall counts as in the lower-index room: it is
        only used to count walls, where either side gives the same count.
        """
        on_floor = np.flatnonzero(self.room_floors == floor)
        boxes = self.room_boxes[on_floor]
        inside = (
            (x[..., None] >= boxes[:, 0])
            & (x[..., None] <= boxes[:, 2])
            & (y[..., None] >= boxes[:, 1])
            & (y[..., None] <= boxes[:, 3])
        )
        return np.where(inside.any(axis=-1), on_floor[inside.argmax(axis=-1)], -1)


def _device(room: Room, device_id: str, name: str, fx: float, fy: float) -> Device:
    """A device at fraction (fx, fy) of the way across ``room``."""
    x = room.x0 + fx * (room.x1 - room.x0)
    y = room.y0 + fy * (room.y1 - room.y0)
    return Device(device_id, name, room.id, room.floor, round(x, 2), round(y, 2))


def demo_house() -> House:
    """A small care home: nine rooms over two floors, ten beacons, four gateways.

    Ground floor: lounge, dining room and kitchen along a hall. First floor,
    up the stairs from the hall: a landing with three bedrooms and a
    bathroom off it.
    """
    r = [
        Room("demo-lounge", "Lounge", 0, 0, 0, 7, 5, LOUNGE),
        Room("demo-dining", "Dining room", 0, 7, 0, 12, 5, DINING),
        Room("demo-kitchen", "Kitchen", 0, 12, 0, 16, 5, KITCHEN),
        Room("demo-hall", "Hall", 0, 0, 5, 16, 7.5, CORRIDOR),
        Room("demo-landing", "Landing", 1, 0, 5, 16, 7.5, CORRIDOR),
        Room("demo-bedroom-1", "Bedroom 1", 1, 0, 0, 5.5, 5, BEDROOM),
        Room("demo-bedroom-2", "Bedroom 2", 1, 5.5, 0, 11, 5, BEDROOM),
        Room("demo-bathroom", "Bathroom", 1, 11, 0, 16, 5, BATHROOM),
        Room("demo-bedroom-3", "Bedroom 3", 1, 0, 7.5, 6, 11, BEDROOM),
    ]
    rooms = {room.id: room for room in r}
    doors = [
        ("demo-hall", "demo-lounge"),
        ("demo-hall", "demo-dining"),
        ("demo-dining", "demo-kitchen"),
        ("demo-hall", "demo-kitchen"),
        ("demo-hall", "demo-landing"),
        ("demo-landing", "demo-bedroom-1"),
        ("demo-landing", "demo-bedroom-2"),
        ("demo-landing", "demo-bathroom"),
        ("demo-landing", "demo-bedroom-3"),
    ]
    beacons = [
        _device(rooms["demo-lounge"], "bcn-lounge-tv", "Lounge, by the TV", 0.2, 0.3),
        _device(rooms["demo-lounge"], "bcn-lounge-bay", "Lounge, bay window", 0.8, 0.2),
        _device(rooms["demo-dining"], "bcn-dining", "Dining room", 0.5, 0.4),
        _device(rooms["demo-kitchen"], "bcn-kitchen", "Kitchen", 0.6, 0.3),
        _device(rooms["demo-hall"], "bcn-hall", "Hall", 0.4, 0.5),
        _device(rooms["demo-landing"], "bcn-landing", "Landing", 0.6, 0.5),
        _device(rooms["demo-bedroom-1"], "bcn-bedroom-1", "Bedroom 1", 0.3, 0.3),
        _device(rooms["demo-bedroom-2"], "bcn-bedroom-2", "Bedroom 2", 0.5, 0.3),
        _device(rooms["demo-bathroom"], "bcn-bathroom", "Bathroom", 0.5, 0.5),
        _device(rooms["demo-bedroom-3"], "bcn-bedroom-3", "Bedroom 3", 0.4, 0.6),
    ]
    gateways = [
        _device(rooms["demo-hall"], "pi-hall", "Hall gateway", 0.75, 0.5),
        _device(rooms["demo-lounge"], "pi-lounge", "Lounge gateway", 0.1, 0.9),
        _device(rooms["demo-landing"], "pi-landing", "Landing gateway", 0.3, 0.5),
        _device(rooms["demo-bathroom"], "pi-upstairs", "Upstairs gateway", 0.9, 0.9),
    ]
    return House(
        site_id="demo",
        name="Demo care home",
        timezone="Europe/London",
        rooms=r,
        doors=doors,
        beacons=beacons,
        gateways=gateways,
        badge_prefix="demo-badge-",
        default_badges=6,
    )


# Generated houses: rooms either side of a corridor, 4 m wide and 5 m deep.
_ROOM_WIDTH = 4.0
_ROOM_DEPTH = 5.0
_CORRIDOR_WIDTH = 2.0
# Shared rooms on the ground floor, in this order, before the bedrooms.
_GROUND_FLOOR = (LOUNGE, DINING, KITCHEN, BATHROOM, LOUNGE)


def generated_house(
    rooms: int = 40,
    beacons: int = 50,
    seed: int = 0,
    *,
    floors: int | None = None,
    badges: int = 200,
) -> House:
    """A larger house for scale tests: on each floor a corridor (in segments,
    one per about six rooms) with rooms on both sides, stairs between the
    first segments of consecutive floors.

    Every room gets a beacon while there are enough; the rest go to random
    rooms (``seed``). One gateway per corridor segment.
    """
    if rooms < 2:
        raise ValueError("a generated house needs at least 2 rooms")
    if beacons < 1:
        raise ValueError("a generated house needs at least 1 beacon")
    floors = floors or (1 if rooms < 12 else 2 if rooms <= 60 else 3)
    rng = np.random.default_rng(seed)
    per_floor = [
        rooms // floors + (1 if f < rooms % floors else 0) for f in range(floors)
    ]
    all_rooms: list[Room] = []
    doors: list[tuple[str, str]] = []
    first_segments: list[str] = []
    numbers = dict.fromkeys(KINDS, 0)
    width = len(str(rooms))

    def name(kind: str) -> str:
        numbers[kind] += 1
        label = {CORRIDOR: "Corridor", DINING: "Dining room"}.get(kind, kind.title())
        return f"{label} {numbers[kind]}"

    for floor, count in enumerate(per_floor):
        segments = max(1, round(count / 6)) if count > 2 else 1
        side = count - segments
        columns = max(1, math.ceil(side / 2))
        # Each segment covers whole columns, so a side room opens onto one.
        bounds = np.linspace(0, columns, segments + 1).round().astype(int)
        corridor_ids = []
        for s in range(segments):
            room = Room(
                f"g-room-{len(all_rooms) + 1:0{width}d}",
                name(CORRIDOR),
                floor,
                float(bounds[s] * _ROOM_WIDTH),
                _ROOM_DEPTH,
                float(max(bounds[s + 1], bounds[s] + 1) * _ROOM_WIDTH),
                _ROOM_DEPTH + _CORRIDOR_WIDTH,
                CORRIDOR,
            )
            all_rooms.append(room)
            if corridor_ids:
                doors.append((corridor_ids[-1], room.id))
            corridor_ids.append(room.id)
        first_segments.append(corridor_ids[0])
        for i in range(side):
            column, upper = divmod(i, 2)
            if floor == 0 and i < len(_GROUND_FLOOR):
                kind = _GROUND_FLOOR[i]
            else:
                kind = BATHROOM if i % 7 == 6 else BEDROOM
            y0 = _ROOM_DEPTH + _CORRIDOR_WIDTH if upper else 0.0
            room = Room(
                f"g-room-{len(all_rooms) + 1:0{width}d}",
                name(kind),
                floor,
                column * _ROOM_WIDTH,
                y0,
                (column + 1) * _ROOM_WIDTH,
                y0 + _ROOM_DEPTH,
                kind,
            )
            all_rooms.append(room)
            segment = int(np.searchsorted(bounds, column, side="right")) - 1
            doors.append((corridor_ids[min(segment, segments - 1)], room.id))
    doors.extend(zip(first_segments, first_segments[1:], strict=False))

    # One beacon per room while they last (big shared rooms first), then the
    # rest in random rooms.
    order = sorted(
        range(len(all_rooms)),
        key=lambda i: (all_rooms[i].kind in (BEDROOM, BATHROOM, CORRIDOR), i),
    )
    placed = order[:beacons]
    if beacons > len(all_rooms):
        placed += list(rng.integers(0, len(all_rooms), beacons - len(all_rooms)))
    bwidth = len(str(beacons))
    beacon_list = []
    for n, i in enumerate(placed, start=1):
        room = all_rooms[i]
        fx, fy = rng.uniform(0.15, 0.85, 2)
        beacon_list.append(
            _device(room, f"g-bcn-{n:0{bwidth}d}", f"{room.name} beacon", fx, fy)
        )
    gateways = [
        _device(room, f"g-pi-{n}", f"{room.name} gateway", 0.5, 0.5)
        for n, room in enumerate(
            (room for room in all_rooms if room.kind == CORRIDOR), start=1
        )
    ]
    return House(
        site_id="generated",
        name=f"Generated house ({rooms} rooms)",
        timezone="Europe/London",
        rooms=all_rooms,
        doors=doors,
        beacons=beacon_list,
        gateways=gateways,
        badge_prefix="g-badge-",
        default_badges=badges,
        wearer_prefix="Generated resident",
    )


HOUSES = ("demo", "generated")


def house_by_name(
    name: str, *, rooms: int = 40, beacons: int = 50, seed: int = 0
) -> House:
    """``demo`` or ``generated`` (with ``rooms``, ``beacons`` and ``seed``)."""
    if name == "demo":
        return demo_house()
    if name == "generated":
        return generated_house(rooms=rooms, beacons=beacons, seed=seed)
    raise ValueError(f"no house {name!r} (choose from {', '.join(HOUSES)})")
