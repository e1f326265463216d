"""ACLED exports (CSV), with the columns ACLED publishes: event_id_cnty, event_date, time_precision
(1 day, 2 week, 3 month), event_type, actor1, actor2, assoc_actor_*, iso (ISO 3166 numeric), country,
admin1, location, latitude, longitude, geo_precision, fatalities, notes. Dates come as 2022-01-15
(API, recent exports) or 15 January 2022 (older exports).

Actor names are compared with their runs of spaces collapsed and their ends trimmed (exports edited in a
spreadsheet gain stray spaces). ``assoc_actor_1``/``assoc_actor_2`` are ACLED's lists of actors acting
alongside the primary ones, separated by semicolons; they are kept, and an actor named only there is reported
apart as `associated`, never counted as the actor's own event: ACLED names there allies, victims' identities
and units, and counting them would let one attack be another group's.
"""

from __future__ import annotations

from .format import Format, spaced

_ASSOC = ("nullif(array_to_string(list_filter(list_transform(string_split(concat_ws(';', assoc_actor_1, "
          "assoc_actor_2), ';'), lambda x: " + spaced("x") + "), lambda x: x <> ''), '; '), '')")

ACLED = Format(
    name="acled",
    required=frozenset({"event_id_cnty", "event_date", "event_type", "actor1", "actor2", "country", "admin1",
                        "location", "latitude", "longitude", "fatalities"}),
    optional=("time_precision", "geo_precision", "notes", "assoc_actor_1", "assoc_actor_2", "sub_event_type"),
    types={"event_date": "DATE", "latitude": "DOUBLE", "longitude": "DOUBLE", "fatalities": "INTEGER"},
    date_column="event_date",
    must_have=("event_id_cnty", "event_date", "fatalities"),
    select=f"""
        SELECT
            'acled' AS source,
            event_id_cnty AS event_id,
            event_date, event_date AS date_end,
            CASE CAST(time_precision AS VARCHAR) WHEN '2' THEN 'week' WHEN '3' THEN 'month' ELSE 'day' END
                AS date_precision,
            (SELECT iso3 FROM country_iso WHERE country_iso.name = raw.country) AS country_iso3,
            admin1 AS province,
            location AS place,
            latitude, longitude,
            CASE CAST(geo_precision AS VARCHAR) WHEN '1' THEN 'site' WHEN '2' THEN 'district' ELSE 'province' END
                AS geo_precision,
            {spaced("actor1")} AS actor1, {spaced("actor2")} AS actor2, NULL AS actor1_id, NULL AS actor2_id,
            coalesce(event_type || ' / ' || sub_event_type, event_type) AS event_type,
            fatalities AS fatalities_best, fatalities AS fatalities_low, fatalities AS fatalities_high,
            notes,
            {_ASSOC} AS assoc_actors
        FROM raw WHERE event_id_cnty IS NOT NULL
    """,
)
