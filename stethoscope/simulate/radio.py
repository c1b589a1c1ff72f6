"""Radio: how strongly a badge hears a beacon, and a gateway hears a badge.

Log-distance path loss with a loss per wall and per floor crossed, Gaussian
shadowing per sample, and a sensitivity floor below which nothing is heard.
The numbers are typical of BLE indoors, not measured in any house.
"""

from dataclasses import dataclass

import numpy as np

from .house import FLOOR_HEIGHT, Device, House

# Closer than this, the log-distance model is meaningless (the antennas'
# near field); a badge lying on a beacon hears it at about the 1-m power.
MIN_DISTANCE = 0.5
# Points per room from which walls are counted, as fractions across it.
_ROOM_POINTS = ((0.5, 0.5), (0.25, 0.25), (0.75, 0.25), (0.25, 0.75), (0.75, 0.75))
# Samples along a line: every 0.3 m across a 40-m house, finer than any room.
_SEGMENT_SAMPLES = 128


@dataclass(frozen=True)
class RadioModel:
    """The parameters of the radio model (dB and dBm)."""

    rssi_at_1m: float = -59.0
    exponent: float = 2.5
    wall_loss_db: float = 5.0
    floor_loss_db: float = 15.0
    # Fast fading: drawn afresh for every sample a badge takes.
    shadowing_db: float = 4.0
    # Slow fading (the wearer's body, how the badge hangs): drawn per badge
    # and beacon each time the badge enters a room, kept while it stays.
    body_db: float = 3.0
    sensitivity_dbm: float = -100.0
    # A badge's update keeps the strongest of this many samples per beacon.
    samples: int = 5
    # A gateway hears an advertisement with probability 1/2 at this mean
    # RSSI, falling off logistically with this slope (dB).
    gateway_threshold_dbm: float = -88.0
    gateway_slope_db: float = 3.0
    gateway_max_probability: float = 0.97

    def mean_rssi(self, distance, walls, floors) -> np.ndarray:
        """Mean RSSI (dBm) at ``distance`` metres through ``walls`` walls and
        ``floors`` floors (arrays broadcast)."""
        distance = np.maximum(np.asarray(distance, dtype=np.float64), MIN_DISTANCE)
        return (
            self.rssi_at_1m
            - 10.0 * self.exponent * np.log10(distance)
            - self.wall_loss_db * np.asarray(walls)
            - self.floor_loss_db * np.abs(np.asarray(floors))
        )

    def hear_probability(self, mean_rssi) -> np.ndarray:
        """The chance that a gateway hears one advertisement of a badge
        whose signal reaches it at ``mean_rssi`` on average."""
        z = (np.asarray(mean_rssi) - self.gateway_threshold_dbm) / self.gateway_slope_db
        return self.gateway_max_probability / (1.0 + np.exp(-z))


def distances(
    x: np.ndarray, y: np.ndarray, floor: np.ndarray, devices: list[Device]
) -> np.ndarray:
    """(points, devices): straight-line distance in metres, floors included."""
    dx = x[:, None] - np.array([d.x for d in devices])
    dy = y[:, None] - np.array([d.y for d in devices])
    dz = (floor[:, None] - np.array([d.floor for d in devices])) * FLOOR_HEIGHT
    return np.sqrt(dx * dx + dy * dy + dz * dz)


def wall_counts(house: House, devices: list[Device]) -> np.ndarray:
    """(rooms, devices): the walls between a room and each device.

    Counted along straight lines from a few points of the room to the
    device, on the room's own floor (for a device upstairs, to the point
    below it), as the number of times the line passes from one room (or the
    outside) to another; averaged over the points. A badge's walls then
    depend only on its room, which keeps the simulation's inner loop cheap.
    """
    if not devices:
        return np.zeros((len(house.rooms), 0))
    targets = np.array([(d.x, d.y) for d in devices])
    steps = np.linspace(0.0, 1.0, _SEGMENT_SAMPLES)
    counts = np.zeros((len(house.rooms), len(devices)))
    for r, room in enumerate(house.rooms):
        starts = np.array(
            [
                (
                    room.x0 + fx * (room.x1 - room.x0),
                    room.y0 + fy * (room.y1 - room.y0),
                )
                for fx, fy in _ROOM_POINTS
            ]
        )
        # (points, devices, samples) along each segment.
        xs = starts[:, None, None, 0] + steps * (
            targets[None, :, None, 0] - starts[:, None, None, 0]
        )
        ys = starts[:, None, None, 1] + steps * (
            targets[None, :, None, 1] - starts[:, None, None, 1]
        )
        where = house.room_at(room.floor, xs, ys)
        crossings = (np.diff(where, axis=-1) != 0).sum(axis=-1)
        counts[r] = crossings.mean(axis=0)
    return counts
