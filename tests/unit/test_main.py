import gc


def test_a_served_app_freezes_what_start_up_made(make_app):
    frozen = gc.get_freeze_count()
    try:
        make_app.wsgi(**{"stethoscope.gc_freeze": "true"})
        assert gc.get_freeze_count() > frozen
    finally:
        gc.unfreeze()


def test_the_tests_apps_freeze_nothing(make_app):
    frozen = gc.get_freeze_count()
    make_app.wsgi()
    assert gc.get_freeze_count() == frozen
