from __future__ import annotations

from datetime import date

import pytest
from dateutil.easter import easter
from hypothesis import given
from hypothesis import strategies as st

from ingest.public_holidays import (
    easter_sunday,
    french_public_holidays,
    public_holiday_name,
)


@pytest.mark.parametrize(
    "known",
    [
        date(1818, 3, 22),  # earliest possible
        date(2000, 4, 23),
        date(2024, 3, 31),
        date(2025, 4, 20),
        date(2026, 4, 5),
        date(2038, 4, 25),  # latest possible
        date(2285, 3, 22),
    ],
)
def test_easter_on_known_dates(known: date) -> None:
    assert easter_sunday(known.year) == known


@given(st.integers(min_value=1583, max_value=4099))
def test_easter_agrees_with_dateutil(year: int) -> None:
    assert easter_sunday(year) == easter(year)


def test_easter_before_the_gregorian_calendar_is_refused() -> None:
    with pytest.raises(ValueError, match="1583"):
        easter_sunday(1500)


def test_2026_holidays() -> None:
    assert dict(french_public_holidays(2026)) == {
        date(2026, 1, 1): "Jour de l'an",
        date(2026, 4, 6): "Lundi de Pâques",
        date(2026, 5, 1): "Fête du Travail",
        date(2026, 5, 8): "Victoire 1945",
        date(2026, 5, 14): "Ascension",
        date(2026, 5, 25): "Lundi de Pentecôte",
        date(2026, 7, 14): "Fête nationale",
        date(2026, 8, 15): "Assomption",
        date(2026, 11, 1): "Toussaint",
        date(2026, 11, 11): "Armistice 1918",
        date(2026, 12, 25): "Noël",
    }


def test_alsace_moselle_adds_good_friday_and_saint_stephen() -> None:
    assert public_holiday_name(date(2026, 4, 3)) is None
    assert public_holiday_name(date(2026, 4, 3), alsace_moselle=True) == "Vendredi saint"
    assert public_holiday_name(date(2026, 12, 26), alsace_moselle=True) == "Saint-Étienne"
    assert len(french_public_holidays(2026, alsace_moselle=True)) == 13


def test_ordinary_day_is_not_a_holiday() -> None:
    assert public_holiday_name(date(2026, 5, 13)) is None
