"""French public holidays (jours fériés), on which the weekly timetable does not run.

Hand-written rather than the ``holidays`` package: the list is fixed by the Code du travail
(art. L3133-1) and only Easter moves, which the anonymous Gregorian algorithm computes in a
dozen lines of integer arithmetic; a dependency carrying every country's calendar buys
nothing here.
"""

from __future__ import annotations

from datetime import date, timedelta
from functools import lru_cache
from types import MappingProxyType
from typing import Final

FIRST_GREGORIAN_YEAR: Final = 1583

_FIXED: Final = (
    (1, 1, "Jour de l'an"),
    (5, 1, "Fête du Travail"),
    (5, 8, "Victoire 1945"),
    (7, 14, "Fête nationale"),
    (8, 15, "Assomption"),
    (11, 1, "Toussaint"),
    (11, 11, "Armistice 1918"),
    (12, 25, "Noël"),
)


def easter_sunday(year: int) -> date:
    """Easter Sunday of ``year`` (Gregorian), by the anonymous (Meeus/Jones/Butcher) algorithm."""
    if year < FIRST_GREGORIAN_YEAR:
        raise ValueError(f"year {year}: the Gregorian computus starts in {FIRST_GREGORIAN_YEAR}")
    golden = year % 19
    century, year_of_century = divmod(year, 100)
    leap_centuries, century_rest = divmod(century, 4)
    moon_correction = (century - (century + 8) // 25 + 1) // 3
    epact = (19 * golden + century - leap_centuries - moon_correction + 15) % 30
    leap_years, year_rest = divmod(year_of_century, 4)
    weekday_offset = (32 + 2 * century_rest + 2 * leap_years - epact - year_rest) % 7
    late_correction = (golden + 11 * epact + 22 * weekday_offset) // 451
    month, day = divmod(epact + weekday_offset - 7 * late_correction + 114, 31)
    return date(year, month, day + 1)


@lru_cache(maxsize=64)
def _holidays(year: int, alsace_moselle: bool) -> MappingProxyType[date, str]:
    easter = easter_sunday(year)
    days = {date(year, month, day): name for month, day, name in _FIXED}
    days[easter + timedelta(days=1)] = "Lundi de Pâques"
    days[easter + timedelta(days=39)] = "Ascension"
    days[easter + timedelta(days=50)] = "Lundi de Pentecôte"
    if alsace_moselle:
        # Local law of the Bas-Rhin, Haut-Rhin and Moselle adds two days.
        days[easter - timedelta(days=2)] = "Vendredi saint"
        days[date(year, 12, 26)] = "Saint-Étienne"
    return MappingProxyType(dict(sorted(days.items())))


def french_public_holidays(
    year: int, *, alsace_moselle: bool = False
) -> MappingProxyType[date, str]:
    """The public holidays of ``year`` in metropolitan France, date → name, in date order."""
    return _holidays(year, alsace_moselle)


def public_holiday_name(day: date, *, alsace_moselle: bool = False) -> str | None:
    """The holiday's name if ``day`` is a French public holiday, else None."""
    return french_public_holidays(day.year, alsace_moselle=alsace_moselle).get(day)
