"""The curated, sourced ISKP attack list (../shared/data/iskp-attacks, its own documented columns).

Every row is an attack ascribed to ISKP; `attribution` (claimed, attributed, suspected) says how firmly,
and is kept in `event_type` so a conservative count can filter on it."""

from __future__ import annotations

from .format import Format

ISKP = Format(
    name="iskp-curated",
    required=frozenset({"event_id", "date", "date_precision", "country_iso3", "province", "place", "attack_type",
                        "fatalities_best", "attribution", "source_url"}),
    optional=("fatalities_low", "fatalities_high", "latitude", "longitude", "geo_precision", "target_type",
              "source_title"),
    types={"date": "DATE", "fatalities_best": "INTEGER", "fatalities_low": "INTEGER", "fatalities_high": "INTEGER",
           "latitude": "DOUBLE", "longitude": "DOUBLE"},
    must_have=("event_id", "date", "fatalities_best"),
    select="""
        SELECT
            'iskp-curated' AS source,
            event_id,
            date AS event_date, date AS date_end,
            date_precision,
            country_iso3,
            province, place,
            TRY_CAST(latitude AS DOUBLE) AS latitude, TRY_CAST(longitude AS DOUBLE) AS longitude,
            geo_precision,
            'Islamic State Khorasan Province' AS actor1, target_type AS actor2, NULL AS actor1_id, NULL AS actor2_id,
            attack_type || ' (' || attribution || ')' AS event_type,
            fatalities_best, TRY_CAST(fatalities_low AS INTEGER) AS fatalities_low,
            TRY_CAST(fatalities_high AS INTEGER) AS fatalities_high,
            source_title || ' <' || source_url || '>' AS notes,
            NULL AS assoc_actors
        FROM raw WHERE event_id IS NOT NULL
    """,
)
