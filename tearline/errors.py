"""The one error hierarchy of Tearline.

Every error carries data, not just a message: a stable ``code``, the HTTP ``status`` it maps to, a
human ``title``/``description`` and structured ``details``. Only two edges turn them into output:
``tearline.web.errors`` (TAXII error resources) and ``tearline.cli`` (exit codes and messages).

    TearlineError
    ├── BadRequest (400)            malformed JSON, bad query parameters, bad envelope
    ├── Unauthorized (401)          no or wrong credentials
    ├── Forbidden (403)             authenticated, but the right is missing
    ├── NotFound (404)              unknown API root, collection, object, status — or not visible
    ├── NotAcceptable (406)         Accept header without the TAXII 2.1 media type
    ├── Conflict (409)              a step the current state does not allow (e.g. a warning's lifecycle)
    ├── PayloadTooLarge (413)       body over the configured max_content_length
    ├── UnsupportedMediaType (415)  Content-Type is not the TAXII 2.1 media type
    ├── TooManyRequests (429)       a limit on how often something may be done; details['retry_after']
    └── ConfigError (CLI only)      invalid compact file, settings or arguments
"""

from __future__ import annotations

from typing import Any


class TearlineError(Exception):
    status: int = 500
    code: str = "internal"
    title: str = "Internal error"

    def __init__(self, description: str, *, details: dict[str, Any] | None = None, code: str | None = None):
        super().__init__(description)
        self.description = description
        self.details = details or {}
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return self.description


class BadRequest(TearlineError):
    status, code, title = 400, "bad_request", "Bad request"


class Unauthorized(TearlineError):
    status, code, title = 401, "unauthorized", "Authentication required"


class Forbidden(TearlineError):
    status, code, title = 403, "forbidden", "Forbidden"


class NotFound(TearlineError):
    status, code, title = 404, "not_found", "Not found"


class NotAcceptable(TearlineError):
    status, code, title = 406, "not_acceptable", "Not acceptable"


class Conflict(TearlineError):
    status, code, title = 409, "conflict", "Conflict"


class PayloadTooLarge(TearlineError):
    status, code, title = 413, "payload_too_large", "Payload too large"


class UnsupportedMediaType(TearlineError):
    status, code, title = 415, "unsupported_media_type", "Unsupported media type"


class TooManyRequests(TearlineError):
    status, code, title = 429, "too_many_requests", "Too many requests"


class Unprocessable(TearlineError):
    """Understood, but more than this hub takes at once or holds for the member (not a body over
    max_content_length, which alone is 413 in TAXII 2.1 §4.2.1)."""

    status, code, title = 422, "unprocessable", "Unprocessable content"


class Unavailable(TearlineError):
    status, code, title = 503, "unavailable", "Service unavailable"


class ConfigError(TearlineError):
    status, code, title = 400, "config", "Invalid configuration"
