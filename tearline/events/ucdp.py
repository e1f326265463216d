"""UCDP Georeferenced Event Dataset (GED) and UCDP Candidate Events, as published (CSV).

Columns per the GED codebook: `id`, `date_start`/`date_end`, `date_prec` (1 exact day … 5 longer than
a month), `side_a`/`side_b` with their `side_*_new_id`, `country`, `adm_1`, `where_coordinates`,
`where_prec`, `best`/`low`/`high`. HDX country files add `iso3` and a second row of HXL tags; the
Candidate releases have no `iso3`, so the country name is mapped to ISO 3166 with pycountry.
"""

from __future__ import annotations

from .format import Format, spaced

_PREC = "CASE date_prec WHEN 1 THEN 'day' WHEN 2 THEN 'week' WHEN 3 THEN 'week' WHEN 4 THEN 'month' ELSE 'year' END"
_GEO = ("CASE where_prec WHEN 1 THEN 'site' WHEN 2 THEN 'district' WHEN 3 THEN 'district' WHEN 4 THEN 'province' "
        "WHEN 5 THEN 'province' WHEN 6 THEN 'country' ELSE 'region' END")

GED = Format(
    name="ucdp-ged",
    optional=("iso3", "active_year", "type_of_violence", "side_a_new_id", "side_b_new_id", "where_coordinates",
              "source_headline"),
    required=frozenset({"id", "relid", "date_start", "date_end", "date_prec", "side_a", "side_b", "country", "adm_1",
                        "best", "low", "high", "where_prec", "latitude", "longitude"}),
    types={"date_prec": "INTEGER", "where_prec": "INTEGER", "best": "INTEGER", "low": "INTEGER", "high": "INTEGER",
           "latitude": "DOUBLE", "longitude": "DOUBLE", "date_start": "TIMESTAMP", "date_end": "TIMESTAMP"},
    must_have=("id", "date_start", "best"),
    select=f"""
        SELECT
            -- Candidate releases write active_year as true/false, GED as 1/0.
            CASE WHEN lower(CAST(active_year AS VARCHAR)) IN ('true', 'false') THEN 'ucdp-candidate'
                 ELSE 'ucdp-ged' END AS source,
            CAST(id AS VARCHAR) AS event_id,
            CAST(date_start AS DATE) AS event_date,
            CAST(date_end AS DATE) AS date_end,
            {_PREC} AS date_precision,
            coalesce(iso3, (SELECT iso3 FROM country_iso WHERE country_iso.name = raw.country)) AS country_iso3,
            trim(regexp_replace(adm_1, '\\s+(province|Province|region|Region|district|District)$', '')) AS province,
            where_coordinates AS place,
            latitude, longitude,
            {_GEO} AS geo_precision,
            {spaced("side_a")} AS actor1, {spaced("side_b")} AS actor2,
            CAST(side_a_new_id AS VARCHAR) AS actor1_id, CAST(side_b_new_id AS VARCHAR) AS actor2_id,
            CASE CAST(type_of_violence AS VARCHAR) WHEN '1' THEN 'state-based' WHEN '2' THEN 'non-state'
                 WHEN '3' THEN 'one-sided' ELSE CAST(type_of_violence AS VARCHAR) END AS event_type,
            best AS fatalities_best, low AS fatalities_low, high AS fatalities_high,
            source_headline AS notes,
            NULL AS assoc_actors
        FROM raw WHERE id IS NOT NULL
    """,
)
