"""STIX 2.1 objects as the hub sees them: validation, versions, timestamps and the references they make.

Every object the hub is given is judged by ``inspect`` (tearline.stix.validate) at least as strictly as
the OASIS validator judges errors, in words that name the property and the reason.
"""

from .refs import MAX_DEPTH, Ref, depth, id_type, ref_allowed, refs_of
from .timestamps import format_us, parse_timestamp, to_us
from .validate import inspect, validate, warm
from .vocabulary import (
    COMMON_REQUIRED,
    META_REQUIRED,
    REQ_ANY,
    REQ_EACH,
    REQ_OPTIONAL,
    REQUIRED_REFS,
    SCO_REQUIRED,
    SCO_TYPES,
    SDO_REQUIRED,
    SDO_TYPES,
    SPEC_VERSION,
    SRO_REQUIRED,
    SRO_TYPES,
    TYPE_NAME,
    kind_of,
    one_of_groups,
    required_properties,
    required_ref_kind,
    version_of,
)

__all__ = [
    "COMMON_REQUIRED", "MAX_DEPTH", "META_REQUIRED", "REQ_ANY", "REQ_EACH", "REQ_OPTIONAL", "REQUIRED_REFS",
    "SCO_REQUIRED", "SCO_TYPES", "SDO_REQUIRED", "SDO_TYPES", "SPEC_VERSION", "SRO_REQUIRED", "SRO_TYPES",
    "TYPE_NAME", "Ref", "depth", "format_us", "id_type", "inspect", "kind_of", "one_of_groups", "parse_timestamp",
    "ref_allowed", "refs_of", "required_properties", "required_ref_kind", "to_us", "validate", "version_of", "warm",
]
