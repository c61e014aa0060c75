"""CO₂e of the energy a vehicle used: tank-to-wheel, well-to-tank and their sum,
well-to-wheel (the boundary of ISO 14083).

The factors come from a versioned factor set (a TOML file under ``factors/``) chosen in
configuration, and every figure carries a reference to the set it was computed with, so
figures from two sets are never added together by mistake.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Final, Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ingest.footprint.energy import CARRIER_UNIT, Carrier, EnergyAmount, EnergyUnit

FACTORS_DIR: Final = Path(__file__).parent / "factors"
# Lives beside the factor sets but is not one: see ingest.footprint.avoided.
CAR_TRIP_FACTOR_FILE: Final = FACTORS_DIR / "avoided-car-trip.toml"
# Factor files round to 0.01 kg; their ttw + wtt may differ from wtw by one rounding step.
_SUM_TOLERANCE: Final = 0.0051


class FactorFileError(ValueError):
    """A factor file that cannot be used; the message names the file."""


class FactorError(LookupError):
    """A factor a computation needs is not in the chosen set."""


class FactorSetMismatchError(ValueError):
    """Figures from two factor sets were to be combined."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CarrierFactor(_Model):
    """kgCO₂e per unit (litre or kWh) of one energy carrier."""

    carrier: Carrier
    unit: EnergyUnit
    label: str = Field(min_length=1)
    ttw_kgco2e: float = Field(ge=0, allow_inf_nan=False)
    wtt_kgco2e: float = Field(ge=0, allow_inf_nan=False)
    wtw_kgco2e: float = Field(ge=0, allow_inf_nan=False)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.unit != CARRIER_UNIT[self.carrier]:
            raise ValueError(
                f"{self.carrier} is counted in {CARRIER_UNIT[self.carrier]}, not {self.unit}"
            )
        if abs(self.ttw_kgco2e + self.wtt_kgco2e - self.wtw_kgco2e) > _SUM_TOLERANCE:
            raise ValueError(
                f"{self.carrier}: ttw {self.ttw_kgco2e} + wtt {self.wtt_kgco2e} "
                f"is not wtw {self.wtw_kgco2e}"
            )
        return self


@dataclass(frozen=True)
class FactorSetRef:
    """What a figure was computed with, recorded on the figure."""

    id: str
    version: str
    date: date
    source: str


class FactorSet(_Model):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    name: str = Field(min_length=1)
    version: str = Field(min_length=1)
    date: date
    source: str = Field(min_length=1)
    url: str | None = None
    factors: tuple[CarrierFactor, ...] = Field(alias="factor", min_length=1)

    @model_validator(mode="after")
    def _one_factor_per_carrier(self) -> Self:
        carriers = [f.carrier for f in self.factors]
        for c in set(carriers):
            if carriers.count(c) > 1:
                raise ValueError(f"carrier {c!r} has more than one factor")
        return self

    @property
    def ref(self) -> FactorSetRef:
        return FactorSetRef(id=self.id, version=self.version, date=self.date, source=self.source)

    def factor(self, carrier: Carrier) -> CarrierFactor:
        for f in self.factors:
            if f.carrier == carrier:
                return f
        raise FactorError(f"factor set {self.id!r} (v{self.version}) has no factor for {carrier}")


_M = TypeVar("_M", bound=BaseModel)


def load_toml_model(path: Path, model: type[_M]) -> _M:
    """Read and validate a TOML data file; any error names the file and the field."""
    try:
        with path.open("rb") as fh:
            raw: dict[str, Any] = tomllib.load(fh)
    except FileNotFoundError:
        raise FactorFileError(f"{path}: no such factor file") from None
    except tomllib.TOMLDecodeError as exc:
        raise FactorFileError(f"{path}: not valid TOML ({exc})") from None
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        details = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(file)'}: {e['msg']}"
            for e in exc.errors(include_url=False)
        )
        raise FactorFileError(f"{path}: {details}") from None


def bundled_factor_sets() -> list[str]:
    """Ids of the factor sets shipped with the package."""
    return sorted(p.stem for p in FACTORS_DIR.glob("*.toml") if p != CAR_TRIP_FACTOR_FILE)


def load_factor_set(choice: str | Path) -> FactorSet:
    """A bundled set by id (``"base-empreinte"``, ``"arrete-2017"``) or a file by path."""
    if isinstance(choice, Path):
        return load_toml_model(choice, FactorSet)
    if choice not in bundled_factor_sets():
        raise FactorFileError(
            f"unknown factor set {choice!r}; bundled: {', '.join(bundled_factor_sets())}"
        )
    path = FACTORS_DIR / f"{choice}.toml"
    factor_set = load_toml_model(path, FactorSet)
    if factor_set.id != choice:
        raise FactorFileError(f"{path}: id {factor_set.id!r} does not match the file name")
    return factor_set


@dataclass(frozen=True)
class Emissions:
    """kgCO₂e of some energy use, split by boundary, with the factor set used."""

    ttw_kgco2e: float
    wtt_kgco2e: float
    factor_set: FactorSetRef

    @property
    def wtw_kgco2e(self) -> float:
        return self.ttw_kgco2e + self.wtt_kgco2e

    @classmethod
    def zero(cls, factor_set: FactorSetRef) -> Emissions:
        return cls(0.0, 0.0, factor_set)

    def __add__(self, other: Emissions) -> Emissions:
        if other.factor_set != self.factor_set:
            raise FactorSetMismatchError(
                f"cannot add figures from factor sets {self.factor_set.id} "
                f"v{self.factor_set.version} and {other.factor_set.id} v{other.factor_set.version}"
            )
        return Emissions(
            self.ttw_kgco2e + other.ttw_kgco2e, self.wtt_kgco2e + other.wtt_kgco2e, self.factor_set
        )


def emissions_of(energy: Iterable[EnergyAmount], factors: FactorSet) -> Emissions:
    ttw: list[float] = []
    wtt: list[float] = []
    for amount in energy:
        f = factors.factor(amount.carrier)
        ttw.append(amount.quantity * f.ttw_kgco2e)
        wtt.append(amount.quantity * f.wtt_kgco2e)
    return Emissions(math.fsum(ttw), math.fsum(wtt), factors.ref)


def total(figures: Iterable[Emissions], factor_set: FactorSetRef) -> Emissions:
    """Sum over a period (days, visits); all figures must come from ``factor_set``."""
    result = Emissions.zero(factor_set)
    for e in figures:
        result = result + e
    return result


@dataclass(frozen=True)
class EmissionIntensity:
    """kgCO₂e per one ``per`` (km, visit, ...), by boundary."""

    ttw_kgco2e: float
    wtt_kgco2e: float
    per: str
    factor_set: FactorSetRef

    @property
    def wtw_kgco2e(self) -> float:
        return self.ttw_kgco2e + self.wtt_kgco2e


def intensity(emissions: Emissions, count: float, per: str) -> EmissionIntensity | None:
    """Emissions shared over ``count`` units; None when there are none (no km, no visit)."""
    if not (math.isfinite(count) and count >= 0):
        raise ValueError(f"count of {per} must be >= 0, got {count}")
    if count == 0:
        return None
    return EmissionIntensity(
        emissions.ttw_kgco2e / count, emissions.wtt_kgco2e / count, per, emissions.factor_set
    )


def per_km(emissions: Emissions, distance_km: float) -> EmissionIntensity | None:
    return intensity(emissions, distance_km, "km")


def per_visit(emissions: Emissions, visits: int) -> EmissionIntensity | None:
    """Emissions of a period shared equally over the visits held in it."""
    return intensity(emissions, visits, "visit")
