"""The ``earliest`` and ``latest`` time modifiers of a base search.

Values modelled, as Splunk's search manual describes them:

- ``now``, and ``0`` or any other number of seconds since the epoch;
- an absolute time in Splunk's default format ``%m/%d/%Y:%H:%M:%S``, read as UTC;
- a relative time ``[+|-][<integer>]<unit>[@<snap unit>]`` or ``@<snap unit>``. The units
  are seconds (``s``, ``sec``, ``secs``, ``second``, ``seconds``), minutes (``m``, ``min``,
  ``mins``, ``minute``, ``minutes``), hours (``h``, ``hr``, ``hrs``, ``hour``, ``hours``),
  days (``d``, ``day``, ``days``) and weeks (``w``, ``week``, ``weeks``). A missing integer
  means 1. The offset is applied first, then the time is snapped down to the start of the
  snap unit (``s``, ``m``, ``h`` or ``d``).

Relative times count from the search's current time, which the stand-in's ``clock``
gives. ``earliest`` is inclusive and ``latest`` exclusive.
NOTE: Splunk snaps and counts days in the searching user's time zone; the stand-in uses
UTC. Months, quarters, years and week snaps (``@w0``) are rejected, not modelled.
"""

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from .errors import SPLSyntaxError

UNIT_SECONDS = {
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), 1),
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes"), 60),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), 3600),
    **dict.fromkeys(("d", "day", "days"), 86400),
    **dict.fromkeys(("w", "week", "weeks"), 604800),
}
SNAP_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
CALENDAR_UNITS = frozenset(
    {
        "mon", "month", "months", "q", "qtr", "qtrs", "quarter", "quarters",
        "y", "yr", "yrs", "year", "years",
    }
)  # fmt: skip
RELATIVE = re.compile(
    r"(?:(?P<sign>[+-])(?P<amount>\d*)(?P<unit>[A-Za-z]+))?(?:@(?P<snap>[A-Za-z0-9]+))?"
)
EPOCH = re.compile(r"\d+(?:\.\d+)?")
ABSOLUTE_FORMAT = "%m/%d/%Y:%H:%M:%S"


@dataclass(frozen=True)
class TimeSpec:
    """A parsed time modifier value: an absolute epoch, or an offset and snap from now."""

    text: str
    epoch: float | None = None
    offset_seconds: int = 0
    snap_seconds: int | None = None

    def resolve(self, now: float) -> float:
        """Return the epoch seconds this value stands for when the search runs at ``now``."""
        if self.epoch is not None:
            return self.epoch
        moment = now + self.offset_seconds
        if self.snap_seconds is not None:
            moment -= moment % self.snap_seconds
        return moment


def parse_time_spec(name: str, text: str) -> TimeSpec:
    """Parse the value of ``earliest`` or ``latest``; raise SPLSyntaxError when it is invalid."""
    value = text.strip()

    if value.lower() == "now":
        return TimeSpec(value)
    if EPOCH.fullmatch(value):
        return TimeSpec(value, epoch=float(value))
    if "/" in value:
        try:
            moment = datetime.strptime(value, ABSOLUTE_FORMAT).replace(tzinfo=UTC)
        except ValueError:
            raise _invalid(name, value, f"an absolute time must use {ABSOLUTE_FORMAT}") from None
        return TimeSpec(value, epoch=moment.timestamp())

    match = RELATIVE.fullmatch(value)
    if not value or match is None:
        raise _invalid(
            name, value, "use now, epoch seconds, MM/DD/YYYY:HH:MM:SS or -<n><unit>[@<unit>]"
        )

    offset = 0
    if match["unit"] is not None:
        unit = match["unit"].lower()
        if unit in CALENDAR_UNITS:
            raise _invalid(
                name, value, f"the Splunk stand-in does not model the calendar unit '{unit}'"
            )
        if unit not in UNIT_SECONDS:
            raise _invalid(name, value, f"'{unit}' is not a time unit")
        amount = int(match["amount"]) if match["amount"] else 1
        offset = amount * UNIT_SECONDS[unit] * (-1 if match["sign"] == "-" else 1)

    snap = None
    if match["snap"] is not None:
        snap_unit = match["snap"].lower()
        if snap_unit not in SNAP_SECONDS:
            raise _invalid(
                name, value, f"the Splunk stand-in snaps only to s, m, h and d, not '{snap_unit}'"
            )
        snap = SNAP_SECONDS[snap_unit]
    return TimeSpec(value, offset_seconds=offset, snap_seconds=snap)


def _invalid(name: str, value: str, reason: str) -> SPLSyntaxError:
    return SPLSyntaxError(f"Invalid value \"{value}\" for time term '{name}': {reason}.")
