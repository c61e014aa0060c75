"""Which route an alert takes and what its message says. Pure: no clock, no database.

Messages are in French, name the bus, the place, the value behind the alert and the
link to acknowledge it, and nothing about patients.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

from ingest.alerts.notify_settings import ChannelName, NotificationSettings, Route, Window
from ingest.alerts.rules import AlertKind
from ingest.public_holidays import public_holiday_name

KIND_FR: Final[Mapping[AlertKind, str]] = {
    "offline": "bus hors ligne",
    "no_gps_fix": "pas de position GPS",
    "low_battery": "batterie auxiliaire faible",
    "fridge_early_warning": "réfrigérateur : alerte précoce",
    "fridge_heat": "réfrigérateur : alarme chaleur",
    "fridge_freeze": "réfrigérateur : alarme gel",
    "late_arrival": "arrivée en retard",
}


def _holiday(day: date, alsace_moselle: bool) -> bool:
    try:
        return public_holiday_name(day, alsace_moselle=alsace_moselle) is not None
    except ValueError:
        # Before the Gregorian calendar there is no computus: no movable holidays known.
        return False


def windows_at(t: datetime, zone: ZoneInfo, settings: NotificationSettings) -> frozenset[Window]:
    """The time windows ``t`` falls in, by the local clock of ``zone``."""
    local = t.astimezone(zone)
    found: set[Window] = set()
    start, end = settings.night_start, settings.night_end
    hour = local.hour
    night = (start <= hour or hour < end) if start > end else (start <= hour < end)
    if night:
        found.add("nights")
    if local.weekday() >= 5:
        found.add("weekends")
    if _holiday(local.date(), settings.alsace_moselle):
        found.add("holidays")
    if not found:
        found.add("working_hours")
    return frozenset(found)


def choose_route(
    routes: Sequence[Route], operator: str, kind: AlertKind, windows: frozenset[Window]
) -> Route | None:
    """The first route of the operator that takes this kind in one of these windows."""
    for route in routes:
        if route.operator != operator:
            continue
        if route.kinds and kind not in route.kinds:
            continue
        if route.windows and not windows.intersection(route.windows):
            continue
        return route
    return None


@dataclass(frozen=True)
class Recipient:
    person: str
    channel: ChannelName
    address: str


def step_recipients(settings: NotificationSettings, route: Route, step: int) -> list[Recipient]:
    """Everyone step ``step`` of ``route`` reaches, once each per channel (people no
    longer in ``settings`` are not)."""
    out: dict[tuple[str, str], Recipient] = {}
    for name in route.steps[step]:
        for person_id in settings.members(name):
            person = settings.people.get(person_id)
            if person is None:
                continue  # no longer in the routing in force
            if "email" in route.channels and person.email is not None:
                out[("email", person.email)] = Recipient(person_id, "email", person.email)
            if "sms" in route.channels and person.phone is not None:
                out[("sms", person.phone)] = Recipient(person_id, "sms", person.phone)
    return list(out.values())


@dataclass(frozen=True)
class AlertFacts:
    """What a message says of an alert."""

    id: int
    kind: AlertKind
    vehicle: str
    label: str
    since: datetime
    detail: Mapping[str, Any]
    place: str | None


def _when(t: datetime, zone: ZoneInfo) -> str:
    return t.astimezone(zone).strftime("%d/%m/%Y à %H:%M")


def _number(x: float, digits: int = 1) -> str:
    return f"{x:.{digits}f}".replace(".", ",")


def value_text(facts: AlertFacts, zone: ZoneInfo) -> str | None:
    """The figure behind the alert, in words."""
    d = facts.detail
    peak = d.get("peak_c")
    if facts.kind in ("fridge_heat", "fridge_early_warning") and isinstance(peak, int | float):
        return f"température maximale {_number(float(peak))} °C"
    if facts.kind == "fridge_freeze" and isinstance(peak, int | float):
        return f"température minimale {_number(float(peak))} °C"
    soc = d.get("soc_pct")
    if facts.kind == "low_battery" and isinstance(soc, int | float):
        return f"charge {_number(float(soc), 0)} %"
    delay = d.get("expected_delay_min")
    if facts.kind == "late_arrival" and isinstance(delay, int | float):
        return f"retard prévu {_number(float(delay), 0)} min"
    if facts.kind == "offline":
        return f"plus de nouvelles depuis le {_when(facts.since, zone)}"
    if facts.kind == "no_gps_fix":
        return f"sans position valide depuis le {_when(facts.since, zone)}"
    return None


def ack_link(base_url: str | None, alert_id: int) -> str | None:
    if base_url is None:
        return None
    return f"{base_url.rstrip('/')}/#/alertes?alert={alert_id}"


def compose(
    facts: AlertFacts,
    zone: ZoneInfo,
    link: str | None,
    *,
    reminder: bool = False,
    escalated: bool = False,
) -> tuple[str, str]:
    """(subject, text) of the message about ``facts``."""
    what = KIND_FR[facts.kind]
    prefix = "RAPPEL – " if reminder else "ESCALADE – " if escalated else ""
    bus = facts.label if facts.label == facts.vehicle else f"{facts.label} ({facts.vehicle})"
    subject = f"{prefix}Médicobus {bus} : {what}"
    lines = [f"{prefix}Alerte Médicobus n° {facts.id} : {what}.", f"Bus : {bus}."]
    lines.append(f"Lieu : {facts.place or 'position inconnue'}.")
    value = value_text(facts, zone)
    if value is not None:
        lines.append(f"Valeur : {value}.")
    lines.append(f"Depuis le {_when(facts.since, zone)} (heure locale).")
    if reminder:
        lines.append("Personne n'a encore acquitté cette alerte.")
    if escalated:
        lines.append("Transmise à vous car personne ne l'a acquittée à temps.")
    if link is not None:
        lines.append(f"Acquitter : {link}")
    return subject, "\n".join(lines)
