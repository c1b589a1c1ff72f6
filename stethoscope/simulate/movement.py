"""How badges move: stay a while in a room, then go through a door.

Each badge's wearer has a home bedroom (bedrooms are shared out in turn).
A stay lasts a log-normally distributed time whose median depends on the
kind of room: long in bedrooms and lounges, short in corridors. When it
ends the wearer walks to an adjacent room, chosen by how inviting it is
(their own bedroom much more than another's). Within a room the badge
drifts a little at every update. One update is one step; a room change
happens between two updates, so the truth of an update is one room.
"""

import numpy as np

from .house import BATHROOM, BEDROOM, CORRIDOR, DINING, KITCHEN, LOUNGE, House

# kind: (median stay in seconds, sigma of its logarithm)
STAYS = {
    BEDROOM: (20 * 60, 0.9),
    LOUNGE: (40 * 60, 0.8),
    DINING: (25 * 60, 0.5),
    KITCHEN: (5 * 60, 0.7),
    BATHROOM: (6 * 60, 0.5),
    CORRIDOR: (25, 0.6),
}
# How likely a door is chosen, by the kind of room behind it.
ATTRACTION = {
    BEDROOM: 1.0,
    LOUNGE: 3.0,
    DINING: 2.0,
    KITCHEN: 1.0,
    BATHROOM: 1.0,
    CORRIDOR: 3.0,
}
HOME_ATTRACTION = 3.0
OTHER_BEDROOM_ATTRACTION = 0.05
# Metres a badge drifts within its room between two updates (s.d.).
DRIFT = 0.3
# Positions keep this far from the walls (or a quarter of a small room).
MARGIN = 0.3


class Walkers:
    """Where every badge is; ``step()`` advances them by one update.

    Arrays are indexed by badge: ``room`` (index into ``house.rooms``),
    ``x`` and ``y`` (metres) and ``entered`` (True for badges that came into
    their room at the last step, or at the start).
    """

    def __init__(
        self, house: House, count: int, rng: np.random.Generator, update_s: float
    ):
        self.house = house
        self.rng = rng
        self.update_s = update_s
        rooms = house.rooms
        bedrooms = [i for i, room in enumerate(rooms) if room.kind == BEDROOM]
        self.home = np.array(
            [bedrooms[n % len(bedrooms)] if bedrooms else -1 for n in range(count)],
            dtype=np.int64,
        )
        self._doors = []
        for room in rooms:
            options = np.array(
                [house.index[other] for other in house.adjacent[room.id]],
                dtype=np.int64,
            )
            weights = np.array([ATTRACTION[rooms[i].kind] for i in options])
            is_bedroom = np.array([rooms[i].kind == BEDROOM for i in options], bool)
            self._doors.append((options, weights, is_bedroom))
        self._stay = np.array([STAYS[room.kind] for room in rooms])
        boxes = house.room_boxes
        margin = np.minimum(
            MARGIN, np.minimum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]) / 4
        )
        self._low = boxes[:, :2] + margin[:, None]
        self._high = boxes[:, 2:] - margin[:, None]

        # Half start at home, the rest anywhere; stays are partly over
        # already, so that badges do not all move at the same step.
        anywhere = rng.integers(0, len(rooms), count)
        at_home = (rng.random(count) < 0.5) & (self.home >= 0)
        self.room = np.where(at_home, self.home, anywhere)
        self.left = np.ceil(self._stays(self.room) * rng.random(count)).astype(np.int64)
        self.x, self.y = self._positions(self.room)
        self.entered = np.ones(count, dtype=bool)

    def _stays(self, rooms: np.ndarray) -> np.ndarray:
        """A fresh stay, in updates (at least one), for each of ``rooms``."""
        median, sigma = self._stay[rooms, 0], self._stay[rooms, 1]
        seconds = median * np.exp(sigma * self.rng.standard_normal(len(rooms)))
        return np.maximum(1, np.rint(seconds / self.update_s)).astype(np.int64)

    def _positions(self, rooms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        low, high = self._low[rooms], self._high[rooms]
        point = low + (high - low) * self.rng.random((len(rooms), 2))
        return point[:, 0], point[:, 1]

    def next_room(self, badge: int) -> int:
        """An adjacent room for ``badge`` to walk into (its own if none)."""
        room = self.room[badge]
        options, weights, is_bedroom = self._doors[room]
        if len(options) == 0:
            return int(room)
        home = options == self.home[badge]
        weights = np.where(
            is_bedroom,
            np.where(home, HOME_ATTRACTION, OTHER_BEDROOM_ATTRACTION),
            weights,
        )
        cumulative = np.cumsum(weights)
        pick = np.searchsorted(cumulative, self.rng.random() * cumulative[-1], "right")
        return int(options[min(pick, len(options) - 1)])

    def step(self) -> np.ndarray:
        """Move every badge on by one update; returns the badges that
        changed room."""
        self.left -= 1
        movers = np.flatnonzero(self.left <= 0)
        for badge in movers:
            self.room[badge] = self.next_room(badge)
        self.entered[:] = False
        if len(movers):
            self.entered[movers] = True
            self.left[movers] = self._stays(self.room[movers])
        # Drift everyone, then place the movers afresh in their new room.
        drift = DRIFT * self.rng.standard_normal((2, len(self.room)))
        rooms = self.room
        self.x = np.clip(self.x + drift[0], self._low[rooms, 0], self._high[rooms, 0])
        self.y = np.clip(self.y + drift[1], self._low[rooms, 1], self._high[rooms, 1])
        if len(movers):
            self.x[movers], self.y[movers] = self._positions(self.room[movers])
        return movers
