"""The ``medicobus`` command as a newcomer runs it."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from ingest.geo import haversine_m
from tests.support.mosquitto import free_port
from tests.support.wait import wait_for

PARIS = ZoneInfo("Europe/Paris")
MEDICOBUS = str(Path(sys.executable).parent / "medicobus")


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [MEDICOBUS, *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_config_validate_accepts_a_good_file(tmp_path: Path) -> None:
    good = tmp_path / "agent.toml"
    good.write_text(
        'vehicle = "vexin-01"\n[broker]\nurl = "mqtt://broker.example:1883"\n'
        '[gps]\nport = "/dev/ttyACM0"\n'
    )
    result = run("config", "validate", str(good))
    assert result.returncode == 0, result.stderr
    assert "valid configuration for vehicle vexin-01" in result.stdout


def test_config_validate_names_the_file_and_the_fields(tmp_path: Path) -> None:
    bad = tmp_path / "agent.toml"
    bad.write_text('vehicle = "Vexin 01"\n[broker]\nurl = "http://nowhere"\n[gps]\nbaudrate = 7\n')
    result = run("config", "validate", str(bad))
    assert result.returncode == 2
    assert str(bad) in result.stderr
    for field in ("vehicle", "broker.url", "gps.port", "gps.baudrate"):
        assert field in result.stderr


def test_config_validate_reports_broken_toml_and_missing_files(tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text("vehicle = \n")
    result = run("config", "validate", str(broken))
    assert result.returncode == 2
    assert "not valid TOML" in result.stderr
    missing = run("config", "validate", str(tmp_path / "absent.toml"))
    assert missing.returncode == 2
    assert "no such configuration file" in missing.stderr


def positions(base: str, token: str) -> dict[str, Any]:
    try:
        response = httpx.get(
            f"{base}/api/v1/positions", headers={"Authorization": f"Bearer {token}"}, timeout=2
        )
    except httpx.TransportError:
        return {}
    return {f["id"]: f for f in response.json()["features"]}


def a_drive_between_visits() -> tuple[str, str]:
    """A time of day when Monday's timetable has vexin-01 driving from its morning visit
    to its afternoon one, and caux-01 parked at its afternoon visit (the demo's plans,
    as the demo makes them: vexin-01 is the first bus, seed 0)."""
    from datetime import date, timedelta

    from ingest.itinerary import load_itinerary
    from medicobus.demo import demo_itinerary, todays_plan, with_timetable_of

    monday = date(2026, 11, 16)
    itinerary = with_timetable_of(load_itinerary(demo_itinerary()), monday, 1)
    plan = todays_plan(itinerary, "vexin-01", monday, 0)
    assert plan is not None
    drive = next(p for p in plan.phases if getattr(p, "origin", "depot") != "depot")
    start = plan.local(drive.trajectory.times[0]) + timedelta(minutes=1)  # type: ignore[attr-defined]
    return f"{start:%H:%M}", drive.destination  # type: ignore[attr-defined]


def test_demo_shows_a_bus_driving_and_a_bus_parked_whatever_the_time(tmp_path: Path) -> None:
    """Run on Monday's timetable from a moment vexin-01 drives between its visits: within
    30 s both buses are on the map, vexin-01 moves and caux-01, parked at its afternoon
    visit, stays where it is."""
    at, _ = a_drive_between_visits()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    started = time.monotonic()
    demo = subprocess.Popen(
        [
            MEDICOBUS,
            "demo",
            "--port",
            str(port),
            "--data-dir",
            str(tmp_path / "demo"),
            "--timetable-of",
            "monday",
            "--start-at",
            at,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(demo.stdout.readline, "")))
    reader.start()
    try:
        link = wait_for(
            lambda: next((ln for ln in lines if ln.startswith("Dashboard: ")), None),
            what="the dashboard link printed by the demo",
        )
        assert "token" not in link, link
        token = wait_for(
            lambda: next(
                (
                    m
                    for ln in lines
                    if (m := re.match(r"API token for scripts \(admin\): (\S+)", ln))
                ),
                None,
            ),
            what="the admin's API token printed by the demo",
        )
        signed = wait_for(
            lambda: [ln.split() for ln in lines if ln.startswith("  coordination@")] or None,
            what="the demo's accounts",
        )
        assert len(signed) == 2
        email, password = signed[0][0], signed[0][1]
        live_from = f"{at}"

        def both_live() -> dict[str, Any] | None:
            """Both buses' positions once their day so far has been sent: positions of
            the demo's present (local time past the start), not of the morning."""
            found = positions(base, token.group(1))
            local = {
                v: datetime.fromisoformat(f["properties"]["time"]).astimezone(PARIS)
                for v, f in found.items()
            }
            done = len(found) == 2 and all(f"{t:%H:%M}" >= live_from for t in local.values())
            return found if done else None

        before = wait_for(both_live, timeout=60, what="both buses' live positions")
        print(f"demo: both buses live after {time.monotonic() - started:.1f} s")
        time.sleep(8)
        after = positions(base, token.group(1))

        def moved_m(vehicle: str) -> float:
            (lon1, lat1), (lon2, lat2) = (
                p[vehicle]["geometry"]["coordinates"] for p in (before, after)
            )
            return haversine_m(lat1, lon1, lat2, lon2)

        # Driving at 30 km/h or more: 60 m in 8 s; parked: a few metres of GPS noise.
        assert moved_m("vexin-01") > 40, after
        assert after["vexin-01"]["properties"]["speed_kmh"] > 5, after
        assert moved_m("caux-01") < 15, after
        assert after["caux-01"]["properties"]["speed_kmh"] < 5, after

        def healthy() -> list[dict[str, Any]] | None:
            vehicles = httpx.get(
                f"{base}/api/v1/vehicles", headers={"Authorization": f"Bearer {token.group(1)}"}
            ).json()
            ready = all(
                v["soc_pct"] is not None and v["fridge_temp_c"] is not None for v in vehicles
            )
            return vehicles if ready else None

        for v in wait_for(healthy, what="battery and fridge readings of both buses"):
            assert 0 < v["soc_pct"] <= 100
            assert -5 < v["fridge_temp_c"] < 20
        assert httpx.get(f"{base}/").status_code == 200
        # A demo account signs in (a session cookie) and sees its operator's bus only.
        answer = httpx.post(f"{base}/api/v1/session", json={"email": email, "password": password})
        assert answer.status_code == 200, answer.text
        session = answer.headers["set-cookie"].split(";")[0]
        mine = httpx.get(f"{base}/api/v1/vehicles", headers={"Cookie": session}).json()
        assert len(mine) == 1, mine
        assert httpx.get(f"{base}/api/v1/positions").status_code == 401
        public = [
            m.group(1) for ln in lines if (m := re.match(r"Public page: (\S+)$", ln.rstrip("\n")))
        ]
        assert len(public) == 2
        for url in public:
            page = httpx.get(url)
            assert page.status_code == 200 and "Cette semaine" in page.text
        metrics = httpx.get(f"{base}/metrics")
        assert metrics.status_code == 200
        assert 'medicobus_ingest_messages_total{outcome="stored"}' in metrics.text
    finally:
        demo.send_signal(signal.SIGINT)
        try:
            demo.wait(timeout=20)
        except subprocess.TimeoutExpired:
            demo.kill()
            demo.wait()
        reader.join(timeout=5)
    output = "".join(lines)
    assert demo.returncode == 0, output
    assert "Traceback" not in output, output


def test_new_token_prints_a_token_and_its_settings_entry() -> None:
    result = run("new-token", "--name", "Camille", "--role", "coordinator", "--operator", "x")
    assert result.returncode == 0, result.stderr
    token = result.stdout.split("it is not stored): ")[1].split()[0]
    from api.auth import hash_token

    assert f'token_sha256 = "{hash_token(token)}"' in result.stdout
    refused = run("new-token", "--name", "Camille", "--role", "boss")
    assert refused.returncode == 2
    assert "boss" in refused.stderr


def test_agent_refuses_a_corrupt_outbox_with_a_clear_message(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "outbox.sqlite").write_bytes(b"this is not a database" * 100)
    config = tmp_path / "agent.toml"
    config.write_text(f'vehicle = "vexin-01"\nstate_dir = "{state}"\n')
    result = run("agent", "--config", str(config))
    assert result.returncode == 2
    assert "outbox.sqlite" in result.stderr
    assert "Traceback" not in result.stderr


def test_db_upgrade_creates_the_schema(tmp_path: Path, itinerary_file: Path) -> None:
    config = tmp_path / "ingest.toml"
    config.write_text(
        f'database_url = "sqlite:///{tmp_path}/cloud.sqlite"\nitinerary_file = "{itinerary_file}"\n'
    )
    result = run("db", "upgrade", "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert "schema up to date" in result.stdout
    import sqlite3

    tables = {
        r[0]
        for r in sqlite3.connect(tmp_path / "cloud.sqlite").execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'"
        )
    }
    assert {"alembic_version", "batches", "gps_samples", "visits"} <= tables


def test_ingest_refuses_a_database_the_store_does_not_speak(
    tmp_path: Path, itinerary_file: Path
) -> None:
    config = tmp_path / "ingest.toml"
    config.write_text(
        f'database_url = "mysql://root@localhost/x"\nitinerary_file = "{itinerary_file}"\n'
    )
    result = run("db", "upgrade", "--config", str(config))
    assert result.returncode == 2
    assert "database_url" in result.stderr
    assert "unsupported database 'mysql'" in result.stderr


def test_follow_up_import_from_the_command_line(
    tmp_path: Path, itinerary_file: Path, itinerary: Any
) -> None:
    from ingest.domain import IngestDomain
    from ingest.settings import DomainSettings
    from ingest.store import Store

    url = f"sqlite:///{tmp_path}/cloud.sqlite"
    config = tmp_path / "ingest.toml"
    config.write_text(f'database_url = "{url}"\nitinerary_file = "{itinerary_file}"\n')
    figures = tmp_path / "bilan-2025.csv"
    figures.write_text(
        "vehicule;mois;profil;consultations\nvexin-01;2025-10;avec-mt;20\n"
        "vexin-01;2025-11;ald-sans-mt;4\n",
        encoding="utf-8",
    )
    # Before the ingest has recorded its settings, nothing is imported, and it says why.
    assert run("db", "upgrade", "--config", str(config)).returncode == 0
    early = run("follow-up", "import", "--config", str(config), str(figures))
    assert early.returncode == 2 and "start it once" in early.stderr
    store = Store.open(url)
    store.load_fleet(itinerary)
    IngestDomain(store, itinerary, DomainSettings())
    store.close()
    done = run("follow-up", "import", "--config", str(config), str(figures))
    assert done.returncode == 0, done.stderr
    assert "2 line(s) imported, 24 consultations" in done.stdout
    figures.write_text("vehicule;mois;profil;consultations\nvexin-01;2025-10;x;1\n")
    refused = run("follow-up", "import", "--config", str(config), str(figures))
    assert refused.returncode == 2
    assert "line 2: unknown profile 'x'" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_ingests_sharing_the_load_are_refused_on_sqlite(
    tmp_path: Path, itinerary_file: Path
) -> None:
    config = tmp_path / "ingest.toml"
    config.write_text(
        f'database_url = "sqlite:///{tmp_path}/cloud.sqlite"\n'
        f'itinerary_file = "{itinerary_file}"\nshared_group = "ingest"\n'
    )
    result = run("ingest", "--config", str(config))
    assert result.returncode == 2
    assert "SQLite takes one writer at a time" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "cloud.sqlite").exists()  # refused before anything is written


def test_ingests_may_share_the_load_on_postgresql(itinerary_file: Path) -> None:
    from ingest.settings import IngestSettings

    shared = IngestSettings(
        database_url="postgresql://ingest@db/medicobus",
        itinerary_file=itinerary_file,
        shared_group="ingest",
    )
    assert shared.shared_group == "ingest"
