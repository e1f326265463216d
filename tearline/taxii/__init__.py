"""TAXII 2.1 as data: query parsing (query), media types (media), envelopes and resources (resources). The
server's HTTP is tearline.web.taxii; a member's side, over httpx, is the client module."""
