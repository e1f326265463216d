"""A member's own audit entries in a file it can check offline: each entry with an inclusion proof into a
signed checkpoint, checked only against the hub key the member was given (``--public-key``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, select

from .. import merkle
from ..errors import BadRequest
from ..store.schema import audit, audit_checkpoints, audit_keys
from .log import AuditLog, entry_hash
from .signing import checkpoint_message, key_id, verify_signature
from .tree import in_tree
from .verify import Report


def export(log: AuditLog, api_root: str, member: str) -> dict[str, Any]:
    """A member's own entries with inclusion proofs into signed checkpoints, verifiable offline."""
    log.checkpoint()  # seal the tail so every entry has a checkpoint
    store = log.store
    with store.engine.connect() as conn:
        mine = [dict(r._mapping) for r in conn.execute(select(audit).where(and_(
            audit.c.api_root == api_root, audit.c.actor == member)).order_by(audit.c.seq))]
        checkpoints = [dict(r._mapping)
                       for r in conn.execute(select(audit_checkpoints).order_by(audit_checkpoints.c.seq))]
        keys = [dict(r._mapping) for r in conn.execute(select(audit_keys))]
        used: dict[int, dict[str, Any]] = {}
        for entry in mine:
            cp = next(c for c in checkpoints if c["first_seq"] <= entry["seq"] <= c["seq"])
            used[cp["seq"]] = cp
            if "tree" not in cp:  # the checkpoint's tree, built once for all of the member's entries in it
                cp["tree"] = merkle.MemoryNodes([bytes.fromhex(h) for (h,) in conn.execute(
                    select(audit.c.hash).where(audit.c.seq.between(cp["first_seq"], cp["seq"])).order_by(audit.c.seq))])
            size, index = cp["seq"] - cp["first_seq"] + 1, entry["seq"] - cp["first_seq"]
            entry["proof"] = {"checkpoint": cp["seq"], "index": index, "size": size,
                              "path": [h.hex() for h in merkle.inclusion_proof(cp["tree"], index, size)]}
    return {
        "format": "tearline-audit-export/1", "api_root": api_root, "member": member,
        "entries": mine,
        "checkpoints": [{k: v for k, v in cp.items() if k != "tree"} for cp in used.values()],
        "public_keys": [{"key_id": k["key_id"], "public_key": k["public_key"]} for k in keys],
    }


def verify_export(doc: Any, trusted_keys: Sequence[str] = ()) -> Report:
    report = Report()
    if not isinstance(doc, dict) or doc.get("format") != "tearline-audit-export/1":
        raise BadRequest("not a Tearline audit export (format tearline-audit-export/1)")
    keys = {key_id(bytes.fromhex(k)): k for k in trusted_keys} or \
        {k["key_id"]: k["public_key"] for k in doc.get("public_keys", [])}
    if not trusted_keys:
        # a file that carries its own keys proves nothing about who signed it: whoever forged the entries
        # would sign them with a key of their own and put that key in the file
        report.problems.append("no trusted public key given: the signatures were checked only against the keys "
                               "inside the file, which whoever wrote it chose; check it against the hub's "
                               "published key (tearline audit key)")
    checkpoints = {cp["seq"]: cp for cp in doc.get("checkpoints", [])}
    for cp in checkpoints.values():
        report.checkpoints += 1
        public = keys.get(cp["key_id"])
        if public is None or not verify_signature(public, checkpoint_message(cp), cp["signature"]):
            report.problems.append(f"checkpoint at entry {cp['seq']}: the signature does not verify with "
                                   + ("the trusted key" if trusted_keys else "the keys in the file"))
    for entry in doc.get("entries", []):
        report.entries += 1
        seq = entry.get("seq")
        try:
            if entry_hash(entry) != entry["hash"]:
                report.problems.append(f"entry {seq}: its content does not match its hash (edited)")
                continue
            proof = entry["proof"]
            cp = checkpoints[proof["checkpoint"]]
            if proof["size"] != cp["seq"] - cp["first_seq"] + 1 or not in_tree(
                    bytes.fromhex(entry["hash"]), proof["index"], proof["size"], proof["path"], cp["root"]):
                report.problems.append(f"entry {seq}: not in the signed checkpoint at entry {cp['seq']}")
        except (KeyError, ValueError, TypeError) as exc:
            report.problems.append(f"entry {seq}: malformed ({exc})")
    return report
