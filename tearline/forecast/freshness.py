"""How old a forecast's data is, measured against today.

A forecast is made from the last month of its data: "next month" is the month after the data ends,
which is next month only if the data is current. Datasets are released months or years after the
events they record (UCDP GED once a year), so a run on data that ended in 2021-12 forecasts 2022-01
whatever the date; presented as current, it is wrong about the present. Every forecast therefore
carries its data's end and the distance of its month from today, and is marked stale when the data
is more than ``STALE_AFTER_MONTHS`` old.

"Today" is a parameter everywhere (default: the real date, UTC), so that what a test or a rerun
says does not depend on the day it runs.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from ..errors import BadRequest

# Conflict data is rarely published in under a month or two (ACLED weekly, UCDP candidate events
# monthly); past a quarter, the data no longer describes the present a forecast is read in.
STALE_AFTER_MONTHS = 3


def today_utc() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def month_of(label: str) -> int:
    """'YYYY-MM' → month index (year * 12 + month - 1), as panel.month_index."""
    try:
        year, month = int(label[:4]), int(label[5:7])
    except ValueError:
        raise BadRequest(f"{label!r} is not a month (YYYY-MM)") from None
    if len(label) != 7 or label[4] != "-" or not 1 <= month <= 12:
        raise BadRequest(f"{label!r} is not a month (YYYY-MM)")
    return year * 12 + month - 1


def _label(index: int) -> str:
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def _months(n: int) -> str:
    return f"{n} month" + ("" if abs(n) == 1 else "s")


def assess(data_end: str, forecast_month: str, today: dt.date | None = None) -> dict[str, Any]:
    """The freshness of a forecast for ``forecast_month`` made from data ending in ``data_end`` (both
    'YYYY-MM'), as JSON-ready fields: ``months_since_data_end`` counts whole calendar months from the
    data's last month to today's (0 in the same month), ``months_until_forecast_month`` from today's
    month to the forecast month (negative once that month is past)."""
    today = today or today_utc()
    now = today.year * 12 + today.month - 1
    end, target = month_of(data_end), month_of(forecast_month)
    age, ahead = now - end, target - now
    stale = age > STALE_AFTER_MONTHS
    reason = None
    if stale:
        when = (f"{_months(-ahead)} ago" if ahead < 0 else "this month" if ahead == 0
                else f"{_months(ahead)} from now")
        reason = (f"the data ends in {data_end}, {_months(age)} before today ({today.isoformat()}): "
                  f"this forecast is for {forecast_month} ({when}), not for the coming months; "
                  f"ingest newer data before acting on it")
    elif age < 0:
        # data dated after "today": a wrong clock or a wrong --today, never a forecast to trust blindly
        stale, reason = True, (f"the data ends in {data_end}, after today ({today.isoformat()}): "
                               "check the date given as today")
    return {"data_end": data_end, "forecast_month": forecast_month, "today": today.isoformat(),
            "months_since_data_end": age, "months_until_forecast_month": ahead,
            "stale": stale, "stale_reason": reason}


def next_month(data_end: str) -> str:
    return _label(month_of(data_end) + 1)
