from stethoscope.ops.services import HEALTH_MEMBERS, HealthService

MEMORY = {"backend": "memory", "claims": 2}


def check(database_answers: bool, members: dict):
    return HealthService(lambda: database_answers, {HEALTH_MEMBERS: members}).check()


def test_the_members_features_added_are_reported():
    report = check(True, {"dedup": lambda registry: MEMORY})

    assert report.model_dump(mode="json") == {
        "status": "ok",
        "database": "ok",
        "dedup": MEMORY,
    }


def test_the_status_follows_the_database_alone():
    report = check(
        False,
        {
            "dedup": lambda registry: {"backend": "redis", "redis": "unavailable"},
            "locating": lambda registry: {"status": "ok"},
        },
    )

    assert (report.status, report.database) == ("unavailable", "unavailable")
    assert report.model_dump(mode="json")["locating"] == {"status": "ok"}
    # Absent counters are left out, not sent as null.
    assert report.model_dump(mode="json")["dedup"] == {
        "backend": "redis",
        "redis": "unavailable",
    }
