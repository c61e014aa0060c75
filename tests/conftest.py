from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest.itinerary import Itinerary, load_itinerary
from ingest.store import Store
from tests.support.databases import postgres_available, postgres_database
from tests.support.mosquitto import Mosquitto

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def itinerary_file() -> Path:
    return DATA / "itineraries.toml"


@pytest.fixture(scope="session")
def itinerary(itinerary_file: Path) -> Itinerary:
    return load_itinerary(itinerary_file)


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    broker = Mosquitto(tmp_path / "mosquitto").start()
    yield broker
    broker.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'medicobus.sqlite'}"
        return
    why = postgres_available()
    if why is not None:
        pytest.skip(why)
    with postgres_database() as url:
        yield url


@pytest.fixture
def store(database_url: str, itinerary: Itinerary) -> Iterator[Store]:
    s = Store.open(database_url)
    s.load_fleet(itinerary)
    yield s
    s.close()
