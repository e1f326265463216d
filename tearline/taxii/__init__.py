"""TAXII 2.1: query parsing (query), media types (media) and the endpoints (api)."""
