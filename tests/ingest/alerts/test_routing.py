"""Which route an alert takes by operator, kind and time window (nights, weekends,
French public holidays, by the Paris clock), and who each step reaches."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from ingest.alerts.notify_settings import NotificationSettings, Window
from ingest.alerts.routing import (
    AlertFacts,
    choose_route,
    compose,
    step_recipients,
    windows_at,
)

PARIS = ZoneInfo("Europe/Paris")
SETTINGS = NotificationSettings.model_validate(
    {
        "people": {
            "pharma": {"name": "P", "email": "p@example.fr", "phone": "+33600000001"},
            "garde": {"name": "G", "phone": "+33600000002"},
            "cellule": {"name": "C", "email": "c@example.fr"},
        },
        "roles": {"astreinte": ["garde", "pharma"]},
        "routes": [
            {
                "operator": "eure",
                "kinds": ["fridge_heat"],
                "windows": ["nights", "weekends", "holidays"],
                "steps": [["astreinte"], ["cellule"]],
            },
            {
                "operator": "eure",
                "kinds": ["fridge_heat", "late_arrival"],
                "steps": [["pharma"]],
                "channels": ["email"],
            },
            {"operator": "caux", "steps": [["cellule"]], "channels": ["email"]},
        ],
        "smtp": {"host": "127.0.0.1", "sender": "a@example.fr"},
        "sms": {"url": "http://127.0.0.1:9/sms"},
    }
)


@pytest.mark.parametrize(
    ("utc", "expected"),
    [
        # Tuesday 17 Nov 2026 at 11:00 and 21:30 Paris (UTC+1).
        (datetime(2026, 11, 17, 10, 0, tzinfo=UTC), {"working_hours"}),
        (datetime(2026, 11, 17, 20, 30, tzinfo=UTC), {"nights"}),
        # 06:59 is still night, 07:00 is not (summer time, UTC+2).
        (datetime(2026, 6, 16, 4, 59, tzinfo=UTC), {"nights"}),
        (datetime(2026, 6, 16, 5, 0, tzinfo=UTC), {"working_hours"}),
        # Saturday 21 Nov 2026 at noon.
        (datetime(2026, 11, 21, 11, 0, tzinfo=UTC), {"weekends"}),
        # 14 July 2026 is a Tuesday and a holiday; 23:30 on 31 Dec is a night.
        (datetime(2026, 7, 14, 10, 0, tzinfo=UTC), {"holidays"}),
        (datetime(2026, 12, 31, 22, 30, tzinfo=UTC), {"nights"}),
        # 00:30 on 1 Jan 2027 in Paris is still 31 Dec in UTC: a holiday night.
        (datetime(2026, 12, 31, 23, 30, tzinfo=UTC), {"nights", "holidays"}),
        # Easter Monday 2027 (29 March), by the computus.
        (datetime(2027, 3, 29, 9, 0, tzinfo=UTC), {"holidays"}),
    ],
)
def test_time_windows_by_the_local_clock(utc: datetime, expected: set[str]) -> None:
    assert windows_at(utc, PARIS, SETTINGS) == frozenset(expected)


def test_windows_at_the_ends_of_the_calendar() -> None:
    # Before 1583 no holiday is known; 1 Jan of year 1 was a Monday (proleptic).
    first = datetime(1, 1, 1, 12, 0, tzinfo=UTC)
    assert windows_at(first, ZoneInfo("UTC"), SETTINGS) == {"working_hours"}
    last = datetime(9999, 12, 31, 12, 0, tzinfo=UTC)
    assert windows_at(last, ZoneInfo("UTC"), SETTINGS) == {"working_hours"}


def test_the_first_matching_route_wins() -> None:
    routes = SETTINGS.routes
    night: frozenset[Window] = frozenset({"nights"})
    day: frozenset[Window] = frozenset({"working_hours"})
    assert choose_route(routes, "eure", "fridge_heat", night) is routes[0]
    assert choose_route(routes, "eure", "fridge_heat", day) is routes[1]
    assert choose_route(routes, "eure", "late_arrival", night) is routes[1]
    assert choose_route(routes, "eure", "offline", day) is None
    assert choose_route(routes, "caux", "offline", night) is routes[2]
    assert choose_route(routes, "nobody", "fridge_heat", night) is None


def test_a_role_reaches_each_member_on_each_channel_once() -> None:
    first = step_recipients(SETTINGS, SETTINGS.routes[0], 0)
    assert sorted((r.channel, r.address) for r in first) == [
        ("email", "p@example.fr"),
        ("sms", "+33600000001"),
        ("sms", "+33600000002"),
    ]
    email_only = step_recipients(SETTINGS, SETTINGS.routes[1], 0)
    assert [(r.channel, r.address) for r in email_only] == [("email", "p@example.fr")]


def test_the_message_names_bus_place_value_and_link_in_french() -> None:
    facts = AlertFacts(
        id=42,
        kind="fridge_heat",
        vehicle="vexin-01",
        label="Vexin",
        since=datetime(2026, 11, 21, 1, 5, tzinfo=UTC),
        detail={"peak_c": 9.25, "fridge_alarm_id": 7},
        place="Gisors (49.28090, 1.77680)",
    )
    subject, text = compose(facts, PARIS, "https://m.example/#/alertes?alert=42")
    assert subject == "Médicobus Vexin (vexin-01) : réfrigérateur : alarme chaleur"
    assert text.splitlines() == [
        "Alerte Médicobus n° 42 : réfrigérateur : alarme chaleur.",
        "Bus : Vexin (vexin-01).",
        "Lieu : Gisors (49.28090, 1.77680).",
        "Valeur : température maximale 9,2 °C.",
        "Depuis le 21/11/2026 à 02:05 (heure locale).",
        "Acquitter : https://m.example/#/alertes?alert=42",
    ]
    freeze = AlertFacts(42, "fridge_freeze", "v", "v", facts.since, {"peak_c": -1.0}, None)
    _, text = compose(freeze, PARIS, None, reminder=True)
    assert "Valeur : température minimale -1,0 °C." in text
    assert "Lieu : position inconnue." in text
    assert text.startswith("RAPPEL – ")
    assert "Acquitter" not in text


def test_late_arrival_and_low_battery_values() -> None:
    t = datetime(2026, 11, 17, 8, 0, tzinfo=UTC)
    late = AlertFacts(3, "late_arrival", "v", "v", t, {"expected_delay_min": 22.4}, "Gisors")
    assert "Valeur : retard prévu 22 min." in compose(late, PARIS, None)[1]
    low = AlertFacts(4, "low_battery", "v", "v", t, {"soc_pct": 18.0}, None)
    assert "Valeur : charge 18 %." in compose(low, PARIS, None)[1]
