"""What a dataset's file looks like to the ingester: its required columns and the SELECT that turns its
rows into the canonical events table. Each dataset's module (ucdp, acled, curated) declares one."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Format:
    name: str
    required: frozenset[str]
    optional: tuple[str, ...]  # used when present, NULL when a release lacks them
    # DuckDB types of the columns that must parse; the rest are read as text
    types: dict[str, str]
    # SELECT over the raw table `raw` producing COLUMNS (minus file)
    select: str
    # column whose date format is sniffed from the first rows (ACLED writes both 2022-01-15 and 15 January 2022)
    date_column: str | None = None
    # columns every row must fill (its id, date and fatalities): an empty one is an error, never a skip
    must_have: tuple[str, ...] = ()


def spaced(column: str) -> str:
    """SQL for a name with its runs of whitespace made one space and its ends trimmed (NULL stays NULL)."""
    return f"trim(regexp_replace({column}, '\\s+', ' ', 'g'))"
