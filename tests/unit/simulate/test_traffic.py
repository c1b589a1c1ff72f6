"""The cadence and the payloads: updates every 5 s, adverts every second,
at most 8 beacons, acceptable to ingest, the same for a seed."""

import datetime
import itertools
from collections import defaultdict

import numpy as np
import pytest

from stethoscope.ingest.schemas import validate_reading
from stethoscope.simulate.house import demo_house, generated_house
from stethoscope.simulate.radio import RadioModel, distances, wall_counts
from stethoscope.simulate.traffic import (
    DEFAULT_START,
    MAX_PAYLOAD,
    Simulation,
    advertisements,
    labelled_readings,
    time_ordered,
)

START = datetime.datetime(2024, 3, 1, 8, 0, tzinfo=datetime.UTC)


def by_badge(records, key):
    grouped = defaultdict(list)
    for record in records:
        grouped[record.badge_id].append(key(record))
    return grouped


def test_the_same_seed_gives_the_same_readings():
    house = generated_house(rooms=20, beacons=25)
    first = list(labelled_readings(house, badges=30, seconds=600, seed=7))
    again = list(labelled_readings(house, badges=30, seconds=600, seed=7))
    other = list(labelled_readings(house, badges=30, seconds=600, seed=8))
    assert first == again
    assert first != other


def test_each_badge_updates_every_five_seconds_in_time_order():
    records = list(labelled_readings(demo_house(), start=START, seconds=300))
    times = [r.observed_at for r in records]
    assert times == sorted(times)
    assert times[0] >= START
    assert times[-1] < START + datetime.timedelta(seconds=300)
    per_badge = by_badge(records, lambda r: r.observed_at)
    assert len(per_badge) == demo_house().default_badges
    for moments in per_badge.values():
        assert len(moments) == 60
        assert {b - a for a, b in itertools.pairwise(moments)} == {
            datetime.timedelta(seconds=5)
        }


def test_readings_stops_after_that_many():
    records = list(labelled_readings(demo_house(), badges=7, readings=1234))
    assert len(records) == 1234


def test_start_must_be_aware():
    with pytest.raises(ValueError):
        next(
            labelled_readings(
                demo_house(), start=datetime.datetime(2024, 1, 1), seconds=5
            )
        )


@pytest.mark.parametrize(("seconds", "readings"), [(3600, None), (None, 1000)])
def test_a_run_past_the_year_9999_is_refused_before_it_starts(seconds, readings):
    start = datetime.datetime(9999, 12, 31, 23, 59, tzinfo=datetime.UTC)
    records = labelled_readings(
        demo_house(), start=start, seconds=seconds, readings=readings
    )
    with pytest.raises(ValueError, match="past the year 9999"):
        next(records)


def test_adverts_every_second_repeat_the_update():
    house = demo_house()
    adverts = list(advertisements(house, start=START, seconds=60, seed=3))
    readings = list(labelled_readings(house, start=START, seconds=60, seed=3))
    times = [a.sent_at for a in adverts]
    assert times == sorted(times)
    sent = by_badge(adverts, lambda a: (a.sent_at, a.beacons, a.room_id))
    updates = by_badge(readings, lambda r: (r.observed_at, r.beacons, r.room_id))
    for badge, moments in sent.items():
        assert {b[0] - a[0] for a, b in itertools.pairwise(moments)} == {
            datetime.timedelta(seconds=1)
        }
        # Every fifth advertisement is an update; the four after repeat it.
        assert moments[::5] == updates[badge]
        for i, advert in enumerate(moments):
            assert advert[1:] == moments[i - i % 5][1:]


def test_gateways_hear_near_badges_more_than_far_ones():
    house = demo_house()
    heard = defaultdict(lambda: defaultdict(int))
    sent = defaultdict(int)
    for advert in advertisements(house, badges=12, seconds=3 * 3600, seed=1):
        floor = house.rooms[house.index[advert.room_id]].floor
        sent[floor] += 1
        for gateway in advert.heard_by:
            heard[gateway][floor] += 1

    def rate(gateway, floor):
        return heard[gateway][floor] / sent[floor]

    # Each gateway hears the badges of its own floor far more often.
    assert rate("pi-landing", 1) > 2 * rate("pi-landing", 0)
    assert rate("pi-hall", 0) > 2 * rate("pi-hall", 1)
    assert rate("pi-lounge", 0) > 5 * rate("pi-lounge", 1)


def test_payloads_keep_at_most_eight_and_ingest_accepts_them():
    house = generated_house(rooms=40, beacons=50)
    sizes = []
    for advert in advertisements(house, badges=40, seconds=120):
        sizes.append(len(advert.beacons))
        for gateway, strength in advert.heard_by.items():
            reading = validate_reading(
                {
                    "badge_id": advert.badge_id,
                    "pi_id": gateway,
                    "beacons": advert.beacons,
                    "badge_strength": strength,
                },
                max_beacons=MAX_PAYLOAD,
            )
            assert reading.beacons == advert.beacons
    assert max(sizes) == MAX_PAYLOAD


def test_the_payload_is_the_eight_strongest():
    # Without noise, the strongest samples are the mean RSSI: the payload
    # must be the eight beacons with the highest mean at the badge.
    house = demo_house()
    radio = RadioModel(shadowing_db=0.0, body_db=0.0, sensitivity_dbm=-200.0)
    simulation = Simulation(house, badges=10, radio=radio, seed=2)
    walls = wall_counts(house, house.beacons)
    beacon_floors = np.array([b.floor for b in house.beacons])
    for update in itertools.islice(simulation.updates(), 20):
        floors = house.room_floors[update.rooms]
        mean = radio.mean_rssi(
            distances(update.x, update.y, floors, house.beacons),
            walls[update.rooms],
            floors[:, None] - beacon_floors,
        )
        for badge, payload in enumerate(simulation.payloads(update)):
            assert len(payload) == MAX_PAYLOAD
            ranked = np.argsort(-mean[badge])
            expected = {house.beacons[i].id for i in ranked[:MAX_PAYLOAD]}
            assert set(payload) == expected
            for beacon_id, rssi in payload.items():
                i = simulation.beacon_ids.index(beacon_id)
                assert rssi == round(mean[badge, i])


def test_beacons_below_the_sensitivity_floor_are_not_heard():
    radio = RadioModel(sensitivity_dbm=-75.0)
    records = list(labelled_readings(demo_house(), seconds=600, radio=radio))
    values = [rssi for r in records for rssi in r.beacons.values()]
    assert values and min(values) >= -75
    assert any(len(r.beacons) < MAX_PAYLOAD for r in records)


def test_the_own_room_beacon_is_mostly_the_strongest():
    house = demo_house()
    beacon_room = {b.id: b.room_id for b in house.beacons}
    records = list(labelled_readings(house, badges=12, seconds=3600, seed=5))
    right = sum(
        1
        for r in records
        if r.beacons and beacon_room[max(r.beacons, key=r.beacons.get)] == r.room_id
    )
    # Informative but not trivial: the trainer has work to do.
    assert 0.6 < right / len(records) < 0.99


def test_unlabelled_share_leaves_whole_stays_unlabelled():
    house = demo_house()
    records = list(
        labelled_readings(house, badges=12, seconds=4 * 3600, unlabelled_share=0.3)
    )
    share = sum(r.room_id is None for r in records) / len(records)
    assert 0.1 < share < 0.5
    # Unlabelled rows come in runs (whole stays), not one by one.
    rooms = by_badge(records, lambda r: r.room_id)
    switches = sum(
        (a is None) != (b is None)
        for track in rooms.values()
        for a, b in itertools.pairwise(track)
    )
    assert switches < 0.05 * len(records)
    assert all(r.room_id is not None for r in labelled_readings(house, seconds=600))


def test_default_start_is_fixed():
    first = next(labelled_readings(demo_house(), seconds=5))
    assert (
        DEFAULT_START
        <= first.observed_at
        < DEFAULT_START + datetime.timedelta(seconds=5)
    )


def test_a_silenced_beacon_and_gateway_go_unheard_until_restored():
    house = demo_house()
    simulation = Simulation(house, seed=0)
    assert simulation.set_silent("bcn-landing") == "beacon"
    assert simulation.set_silent("pi-landing") == "gateway"
    assert simulation.silent == {"bcn-landing", "pi-landing"}
    adverts = list(time_ordered(simulation, 60))
    assert not any("bcn-landing" in advert.beacons for _, advert in adverts)
    assert not any("pi-landing" in advert.heard_by for _, advert in adverts)
    # Its place in a payload goes to the next strongest: still eight.
    assert max(len(advert.beacons) for _, advert in adverts) == MAX_PAYLOAD
    # The same walk and draws as a run without silences.
    plain = list(time_ordered(Simulation(house, seed=0), 60))
    assert [a.room_id for _, a in adverts] == [a.room_id for _, a in plain]

    simulation.set_silent("bcn-landing", False)
    simulation.set_silent("pi-landing", False)
    assert simulation.silent == frozenset()
    later = [
        advert for _, advert in itertools.islice(time_ordered(simulation, 60), 500)
    ]
    assert any("bcn-landing" in advert.beacons for advert in later)
    assert any("pi-landing" in advert.heard_by for advert in later)


def test_only_the_house_s_devices_can_be_silenced():
    with pytest.raises(ValueError, match="no beacon or gateway 'demo-badge-001'"):
        Simulation(demo_house()).set_silent("demo-badge-001")
