"""TAXII 2.1 as data: query parsing (query), media types (media), envelopes and resources (resources). No
HTTP here: tearline.web.taxii routes requests to these."""
