"""Consultations by profile on one visit, the operator's settings they are checked against,
and continuity of care (the same doctor at a stop)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Final

from pydantic import BaseModel, ConfigDict, Field, model_validator

GENERAL_PRACTICE: Final = "general"
# An id a person types into the operator's file and sees in reports: short, no spaces.
ID_PATTERN: Final = r"^[a-z0-9][a-z0-9_-]{0,39}$"


class Profile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=ID_PATTERN)
    label: str = Field(min_length=1, max_length=120, description="in French, for reports")


# The deployment indicator of the médicobus specifications: consultations by patient
# profile, the patients without a GP (médecin traitant) apart.
DEFAULT_PROFILES: Final = (
    Profile(id="ald-sans-mt", label="ALD sans médecin traitant"),
    Profile(id="70-ans-sans-mt", label="70 ans et plus sans médecin traitant"),
    Profile(id="autre-sans-mt", label="Autres patients sans médecin traitant"),
    Profile(id="avec-mt", label="Patients avec médecin traitant"),
)


class Speciality(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=ID_PATTERN)
    label: str = Field(min_length=1, max_length=120)


class FollowUpSettings(BaseModel):
    """An operator's follow-up: its patient profiles, the specialities its bus offers
    beside general practice, and its professionals' ids (never names in reports)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    profiles: tuple[Profile, ...] = DEFAULT_PROFILES
    specialities: tuple[Speciality, ...] = ()
    professionals: tuple[str, ...] = Field(
        default=(), description="ids the operator gives its doctors and nurses, e.g. med-01"
    )

    @model_validator(mode="after")
    def _distinct(self) -> FollowUpSettings:
        for what, ids in (
            ("profile", [p.id for p in self.profiles]),
            ("speciality", [s.id for s in self.specialities]),
            ("professional", list(self.professionals)),
        ):
            twice = sorted(k for k, n in Counter(ids).items() if n > 1)
            if twice:
                raise ValueError(f"{what} ids given twice: {', '.join(twice)}")
        if not self.profiles:
            raise ValueError("at least one patient profile is needed")
        if GENERAL_PRACTICE in {s.id for s in self.specialities}:
            raise ValueError(f"{GENERAL_PRACTICE!r} is general practice, not a speciality")
        return self

    @property
    def offerings(self) -> tuple[str, ...]:
        return (GENERAL_PRACTICE, *(s.id for s in self.specialities))

    def label_of(self, offering: str) -> str:
        if offering == GENERAL_PRACTICE:
            return "Médecine générale"
        return next((s.label for s in self.specialities if s.id == offering), offering)


@dataclass(frozen=True)
class Consultations:
    """What a visit's team says of its consultations, as counts."""

    by_profile: Mapping[str, int] = field(default_factory=dict)
    sas_referred: int = 0
    cpam_directed: int = 0
    offering: str | None = None
    professionals: tuple[str, ...] = ()

    @property
    def total(self) -> int:
        return sum(self.by_profile.values())


@dataclass(frozen=True)
class ImportedMonth:
    """A month's consultations of one profile from before the system, as the operator
    gave them."""

    vehicle: str
    month: date
    profile: str
    consultations: int


class ConsultationsRefusedError(ValueError):
    """Counts the product refuses, with the reason."""


def check_consultations(
    consultations: Consultations, patients_seen: int, settings: FollowUpSettings
) -> None:
    """Refuse counts that do not add up, name what the operator does not have, or count
    more referrals than consultations."""
    known = {p.id for p in settings.profiles}
    unknown = sorted(set(consultations.by_profile) - known)
    if unknown:
        raise ConsultationsRefusedError(
            f"unknown patient profile(s) {', '.join(unknown)}: the operator's are "
            f"{', '.join(sorted(known))}"
        )
    negative = sorted(k for k, n in consultations.by_profile.items() if n < 0)
    if negative or consultations.sas_referred < 0 or consultations.cpam_directed < 0:
        raise ConsultationsRefusedError("counts cannot be negative")
    if consultations.by_profile and consultations.total != patients_seen:
        raise ConsultationsRefusedError(
            f"the profiles add up to {consultations.total}, not to the {patients_seen} "
            "patients seen"
        )
    for what, n in (
        ("referred by the SAS", consultations.sas_referred),
        ("directed to the CPAM", consultations.cpam_directed),
    ):
        if n > patients_seen:
            raise ConsultationsRefusedError(
                f"{n} patients {what} is more than the {patients_seen} patients seen"
            )
    if consultations.offering is not None and consultations.offering not in settings.offerings:
        raise ConsultationsRefusedError(
            f"unknown kind of consultations {consultations.offering!r}: the operator offers "
            f"{', '.join(settings.offerings)}"
        )
    strangers = sorted(set(consultations.professionals) - set(settings.professionals))
    if strangers:
        raise ConsultationsRefusedError(
            f"unknown professional id(s) {', '.join(strangers)}: add them to the operator's "
            "follow-up settings first"
        )


@dataclass(frozen=True)
class Continuity:
    """At one stop: of the visits whose team was recorded, how many had the stop's usual
    doctor (the one on board most often) on board."""

    stop: str
    usual: str | None
    visits_with_team: int
    with_usual: int

    @property
    def share(self) -> float | None:
        return self.with_usual / self.visits_with_team if self.visits_with_team else None


def continuity(teams: Iterable[tuple[str, tuple[str, ...]]]) -> list[Continuity]:
    """``teams``: (stop, professionals on board) of each visit held. Visits without a
    recorded team are left out; ties for the usual doctor go to the smallest id."""
    by_stop: dict[str, list[tuple[str, ...]]] = {}
    for stop, team in teams:
        if team:
            by_stop.setdefault(stop, []).append(team)
    out = []
    for stop, stop_teams in sorted(by_stop.items()):
        seen = Counter(p for team in stop_teams for p in set(team))
        usual = min(seen, key=lambda p: (-seen[p], p))
        out.append(
            Continuity(stop, usual, len(stop_teams), sum(usual in team for team in stop_teams))
        )
    return out


def consultations_json(c: Consultations) -> str:
    return json.dumps(
        {
            "by_profile": dict(c.by_profile),
            "sas_referred": c.sas_referred,
            "cpam_directed": c.cpam_directed,
            "offering": c.offering,
            "professionals": list(c.professionals),
        },
        sort_keys=True,
    )


def consultations_of(text: str | None) -> Consultations | None:
    if not text:
        return None
    data = json.loads(text)
    return Consultations(
        by_profile={str(k): int(v) for k, v in data.get("by_profile", {}).items()},
        sas_referred=int(data.get("sas_referred", 0)),
        cpam_directed=int(data.get("cpam_directed", 0)),
        offering=data.get("offering"),
        professionals=tuple(data.get("professionals", ())),
    )
