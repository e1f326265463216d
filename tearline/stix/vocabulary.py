"""The STIX 2.1 types as tables: what each requires, what its references may point to, and which of its
references it cannot do without. Declared next to each other so that they read like the specification."""

from __future__ import annotations

import re
from typing import Any

SPEC_VERSION = "2.1"
TYPE_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{1,248}[a-z0-9]$")

# Required properties beyond the common ones, per STIX 2.1 §4-§7. A tuple inside the tuple means
# "at least one of".
SDO_REQUIRED: dict[str, tuple[Any, ...]] = {
    "attack-pattern": ("name",),
    "campaign": ("name",),
    "course-of-action": ("name",),
    "grouping": ("context", "object_refs"),
    "identity": ("name",),
    "incident": ("name",),
    "indicator": ("pattern", "pattern_type", "valid_from"),
    "infrastructure": ("name",),
    "intrusion-set": ("name",),
    "location": (("region", "country", "latitude"),),
    "malware": ("is_family",),
    "malware-analysis": ("product", ("result", "analysis_sco_refs")),
    "note": ("content", "object_refs"),
    "observed-data": ("first_observed", "last_observed", "number_observed", "object_refs"),
    "opinion": ("opinion", "object_refs"),
    "report": ("name", "published", "object_refs"),
    "threat-actor": ("name",),
    "tool": ("name",),
    "vulnerability": ("name",),
}
SRO_REQUIRED: dict[str, tuple[Any, ...]] = {
    "relationship": ("relationship_type", "source_ref", "target_ref"),
    "sighting": ("sighting_of_ref",),
}
SCO_REQUIRED: dict[str, tuple[Any, ...]] = {
    "artifact": (("payload_bin", "url"),),
    "autonomous-system": ("number",),
    "directory": ("path",),
    "domain-name": ("value",),
    "email-addr": ("value",),
    "email-message": ("is_multipart",),
    "file": (("hashes", "name"),),
    "ipv4-addr": ("value",),
    "ipv6-addr": ("value",),
    "mac-addr": ("value",),
    "mutex": ("name",),
    "network-traffic": ("protocols", ("src_ref", "dst_ref")),
    "process": (),
    "software": ("name",),
    "url": ("value",),
    "user-account": (),
    "windows-registry-key": (),
    "x509-certificate": (),
}
META_REQUIRED: dict[str, tuple[Any, ...]] = {
    "marking-definition": ("created",),
    "language-content": ("created", "modified", "object_ref", "contents"),
    "extension-definition": ("created", "modified", "created_by_ref", "name", "schema", "version", "extension_types"),
}

SDO_TYPES = frozenset(SDO_REQUIRED)
SRO_TYPES = frozenset(SRO_REQUIRED)
SCO_TYPES = frozenset(SCO_REQUIRED)
# every object carries these; none of them can be cut from a copy
COMMON_REQUIRED = ("type", "spec_version", "id", "created", "modified")

# The type a reference property may point to (§3.7 and each object's definition). "SDO" means any
# domain object (or a custom one), "SCO" any cyber-observable, "ANY" anything but a marking.
REF_TARGETS: dict[str, frozenset[str]] = {
    "created_by_ref": frozenset({"identity"}),
    "object_marking_refs": frozenset({"marking-definition"}),
    "marking_ref": frozenset({"marking-definition"}),
    "sighting_of_ref": frozenset({"SDO"}),
    "where_sighted_refs": frozenset({"identity", "location"}),
    "observed_data_refs": frozenset({"observed-data"}),
    "source_ref": frozenset({"SDO", "SCO"}),
    "target_ref": frozenset({"SDO", "SCO"}),
    "sample_refs": frozenset({"file", "artifact"}),
    "operating_system_refs": frozenset({"software"}),
    "installed_software_refs": frozenset({"software"}),
    "host_vm_ref": frozenset({"software"}),
    "operating_system_ref": frozenset({"software"}),
    "sample_ref": frozenset({"file", "artifact", "network-traffic"}),
    "resolves_to_refs": frozenset({"ipv4-addr", "ipv6-addr", "mac-addr", "domain-name"}),
    "belongs_to_refs": frozenset({"autonomous-system"}),
}

# The references an object cannot do without (tearline.release withholds an object whose required
# references are all out of its reader's sight, and the write path refuses one whose required targets are
# missing). Per type: each entry is a group of top-level properties; the object needs at least one
# target in each group. A relationship needs both its ends (two groups of one); a report needs one of
# its object_refs (one group).
REQUIRED_REFS: dict[str, tuple[tuple[str, ...], ...]] = {
    "relationship": (("source_ref",), ("target_ref",)),
    "sighting": (("sighting_of_ref",),),
    "report": (("object_refs",),),
    "grouping": (("object_refs",),),
    "note": (("object_refs",),),
    "opinion": (("object_refs",),),
    "observed-data": (("object_refs",),),
    "language-content": (("object_ref",),),
    "network-traffic": (("src_ref", "dst_ref"),),
}
# How refs rows record it (tearline.store.schema.refs.req): 0 optional; 1 a group of its own kind that
# fails if its one target is unseen; 2 the object's one list-like group, which fails only if all are.
REQ_OPTIONAL, REQ_EACH, REQ_ANY = 0, 1, 2


def required_ref_kind(obj: dict[str, Any], prop: str) -> int:
    """How a top-level reference property of an object counts for closure (REQ_* above)."""
    stix_type = obj.get("type")
    if stix_type == "malware-analysis" and prop == "analysis_sco_refs" and "result" not in obj:
        return REQ_ANY  # without a result, the analysis is its observables
    for group in REQUIRED_REFS.get(stix_type, ()):  # type: ignore[arg-type]
        if prop in group:
            return REQ_EACH if len(group) == 1 and not prop.endswith("_refs") else REQ_ANY
    return REQ_OPTIONAL


def required_properties(stix_type: str) -> set[str]:
    """Every property the type requires (members of 'one of' groups included): a tear line may not cut
    them, and a redaction profile leaves them where the type needs them."""
    names = set(COMMON_REQUIRED)
    for table in (SDO_REQUIRED, SRO_REQUIRED, SCO_REQUIRED, META_REQUIRED):
        for req in table.get(stix_type, ()):
            names.update(req if isinstance(req, tuple) else (req,))
    return names


def one_of_groups(stix_type: str) -> list[tuple[str, ...]]:
    """The type's "at least one of" requirements (a location needs region, country or latitude)."""
    return [req for table in (SDO_REQUIRED, SRO_REQUIRED, SCO_REQUIRED, META_REQUIRED)
            for req in table.get(stix_type, ()) if isinstance(req, tuple)]


def kind_of(stix_type: str) -> str:
    if stix_type in SDO_TYPES:
        return "SDO"
    if stix_type in SRO_TYPES:
        return "SRO"
    if stix_type in SCO_TYPES:
        return "SCO"
    if stix_type in META_REQUIRED:
        return "META"
    return "CUSTOM"


def version_of(obj: dict[str, Any]) -> str | None:
    """The TAXII version of an object: modified, else created, else None (then date_added)."""
    value = obj.get("modified") or obj.get("created")
    return value if isinstance(value, str) else None
