"""The chain's calendar: local time, opening hours by store format, holidays and events, shelf audits.

The simulated chain trades in Great Britain (its depots are in England), so every store keeps
``Europe/London`` time (GMT in winter, BST in summer) and follows English trading rules:

- **superstore** (a large shop, over 280 m2): Monday to Saturday 07:00-22:00; Sunday 10:00-16:00
  (the Sunday Trading Act 1994 allows large shops six continuous hours between 10:00 and 18:00);
  bank holidays 08:00-20:00; closed on Easter Sunday and Christmas Day (the Act and the Christmas
  Day (Trading) Act 2004).
- **express** (a convenience store, under 280 m2, exempt from the Sunday rules): 07:00-23:00 every
  day, closed on Christmas Day.

Holidays are England's bank holidays (computed, Easter included); events are days when people
buy more or less (the days before Christmas and Easter, New Year's Eve). Demand happens only while
a store is open. Shelf audits, as retail out-of-stock studies count them, are at fixed local times
when the store is open (``AUDIT_HOURS``). Everything here is pure and deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import numpy as np

TIMEZONE = "Europe/London"
FORMATS = ("superstore", "express")
AUDIT_HOURS = (11, 15, 19)  # local shelf-audit times, counted when the store is open then
HOURS = 24


@dataclass(frozen=True)
class OpeningHours:
    """A day's local opening hours ``[opens, closes)`` in whole hours; ``closed`` when it does not open."""

    opens: int
    closes: int

    @property
    def closed(self) -> bool:
        return self.closes <= self.opens

    def mask(self) -> np.ndarray:
        """A (24,) bool array: is the store open during each local hour."""
        hours = np.arange(HOURS)
        return (hours >= self.opens) & (hours < self.closes)


CLOSED = OpeningHours(0, 0)
REGULAR: dict[str, dict[str, OpeningHours]] = {
    "superstore": {
        "weekday": OpeningHours(7, 22),
        "sunday": OpeningHours(10, 16),
        "bank_holiday": OpeningHours(8, 20),
    },
    "express": {"weekday": OpeningHours(7, 23), "sunday": OpeningHours(7, 23), "bank_holiday": OpeningHours(7, 23)},
}


def easter_sunday(year: int) -> date:
    """Easter Sunday of ``year`` (the anonymous Gregorian computus)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = b // 4, b % 4
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = c // 4, c % 4
    ell = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * ell) // 451
    month = (h + ell - 7 * m + 114) // 31
    day = (h + ell - 7 * m + 114) % 31 + 1
    return date(year, month, day)


def _first_monday(year: int, month: int) -> date:
    first = date(year, month, 1)
    return first + timedelta(days=(7 - first.weekday()) % 7)


def _last_monday(year: int, month: int) -> date:
    last = (date(year, month % 12 + 1, 1) if month < 12 else date(year + 1, 1, 1)) - timedelta(days=1)
    return last - timedelta(days=last.weekday())


def _substitute(day: date, taken: set[date]) -> date:
    """A holiday on a weekend (or on another holiday's substitute) moves to the next free weekday."""
    while day.weekday() >= 5 or day in taken:
        day += timedelta(days=1)
    return day


@lru_cache(maxsize=64)
def bank_holidays(year: int) -> frozenset[date]:
    """England and Wales bank holidays of ``year`` (substitute days included)."""
    easter = easter_sunday(year)
    fixed = {easter - timedelta(days=2), easter + timedelta(days=1), _first_monday(year, 5)}
    fixed |= {_last_monday(year, 5), _last_monday(year, 8)}
    taken: set[date] = set(fixed)
    for day in (date(year, 1, 1), date(year, 12, 25), date(year, 12, 26)):
        moved = _substitute(day, taken)
        taken.add(moved)
    return frozenset(taken)


def closed_days(year: int) -> frozenset[date]:
    """Days large shops must close: Easter Sunday and Christmas Day."""
    return frozenset({easter_sunday(year), date(year, 12, 25)})


@lru_cache(maxsize=4096)
def opening_hours(store_format: str, day: date) -> OpeningHours:
    """The local opening hours of a store of ``store_format`` on ``day``."""
    hours = REGULAR[store_format]
    if day == date(day.year, 12, 25) or (store_format == "superstore" and day in closed_days(day.year)):
        return CLOSED
    if day in bank_holidays(day.year):
        return hours["bank_holiday"]
    return hours["sunday"] if day.weekday() == 6 else hours["weekday"]


@lru_cache(maxsize=4096)
def event_factor(day: date) -> float:
    """How much more (or less) people buy on ``day`` than on a normal day of its weekday."""
    easter = easter_sunday(day.year)
    factors = {
        date(day.year, 12, 23): 1.35,
        date(day.year, 12, 24): 1.6,
        date(day.year, 12, 26): 0.7,
        date(day.year, 12, 31): 1.25,
        date(day.year, 1, 1): 0.6,
        easter - timedelta(days=3): 1.15,  # Maundy Thursday
        easter - timedelta(days=1): 1.3,  # Easter Saturday: people stock up before the Sunday closure
        easter + timedelta(days=1): 0.85,  # Easter Monday
    }
    if day in factors:
        return factors[day]
    return 0.9 if day in bank_holidays(day.year) else 1.0


@dataclass(frozen=True)
class LocalHour:
    """A UTC hour as the stores see it: its local date, weekday and hour of day."""

    utc: datetime
    day: date
    weekday: int  # Monday 0
    hour: int


@lru_cache(maxsize=65536)
def local_hour(utc_hour: datetime, timezone: str = TIMEZONE) -> LocalHour:
    """The local date and hour of the UTC hour starting at ``utc_hour``."""
    local = utc_hour.astimezone(ZoneInfo(timezone))
    return LocalHour(utc_hour, local.date(), local.weekday(), local.hour)


def local_date(moment: datetime, timezone: str = TIMEZONE) -> date:
    """The local date of ``moment``."""
    return moment.astimezone(ZoneInfo(timezone)).date()


def local_midnights(start: datetime, end: datetime, timezone: str = TIMEZONE) -> list[datetime]:
    """The UTC instants of the local midnights in ``(start, end]`` (each a whole UTC hour)."""
    zone = ZoneInfo(timezone)
    day = start.astimezone(zone).date() + timedelta(days=1)
    out: list[datetime] = []
    while True:
        midnight = datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)
        if midnight > end:
            return out
        out.append(midnight)
        day += timedelta(days=1)


def is_audit_time(moment: datetime, timezone: str = TIMEZONE) -> bool:
    """Is ``moment`` (UTC, on the hour) one of the local shelf-audit times?"""
    local = moment.astimezone(ZoneInfo(timezone))
    return local.minute == 0 and local.second == 0 and local.hour in AUDIT_HOURS


def day_ordinal(day: date) -> int:
    """A day's number (what day-level random draws are keyed by)."""
    return day.toordinal()
