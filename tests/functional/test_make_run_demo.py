"""make run sets the demo house up once: when ``stethoscope-house INI site
list`` shows no site demo. Running ``stethoscope-simulate setup`` again
would put back what an admin changed, which is why make run asks first."""

import re
from pathlib import Path

from sqlalchemy.orm import Session

from stethoscope.registry.models import Room
from stethoscope.scripts import house, simulate

MAKEFILE = Path(__file__).resolve().parents[2] / "Makefile"
# What the Makefile's run recipe looks for in the site list.
DEMO_LINE = re.compile(r"^demo ", re.MULTILINE)


def site_list(ini, capsys) -> str:
    assert house.main([ini, "site", "list"]) == 0
    return capsys.readouterr().out


def test_the_makefile_asks_the_site_list_before_setting_up():
    recipe = MAKEFILE.read_text()
    ask = recipe.index("stethoscope-house development.ini site list")
    grep = recipe.index("grep -q '^demo '")
    setup = recipe.index("$(BIN)/stethoscope-simulate setup development.ini")
    assert ask < grep < setup


def test_the_site_list_shows_the_demo_house_once_it_is_set_up(ini, engine, capsys):
    assert not DEMO_LINE.search(site_list(ini, capsys))
    assert simulate.main(["setup", ini]) == 0
    capsys.readouterr()

    assert DEMO_LINE.search(site_list(ini, capsys))

    # What make run's check protects: an admin's change that a second setup
    # would undo.
    with Session(engine) as session, session.begin():
        room = session.scalars(
            Room.__table__.select().where(Room.site_id == "demo").limit(1)
        ).first()
        session.get(Room, room).name = "Renamed by an admin"
    assert simulate.main(["setup", ini]) == 0
    with Session(engine) as session:
        assert session.get(Room, room).name != "Renamed by an admin"
