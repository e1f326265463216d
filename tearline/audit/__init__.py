"""The append-only audit trail: every request and every admin action, hash-chained, sealed by signed tree
heads that members keep and check (a transparency log, as in RFC 6962/9162), verifiable by the operator
and, for its own records, by each member offline.

Chain (``log``). Entry n's hash is SHA-256 over its content, entry n-1's hash and a random nonce, so
changing, removing, inserting or reordering an entry breaks every link after it; the nonce makes an entry's
hash unguessable, so a member shown a neighbour's hash learns nothing about what another member did.

Checkpoints (``log``). Every ``checkpoint_every`` entries (and before an export) the hub signs, with
Ed25519, the Merkle root of the range's entry hashes and the chain head.

Tree heads (``log``, ``tree``). The hub seals the whole log: a signed head (size, Merkle tree hash of every
entry, time, key) every ``audit_seal_seconds`` (default 10) while entries arrive, when a checkpoint is
signed and when it stops. A cut-off tail can go unseen only if it is cut from a hub that crashed (not
stopped) within those seconds of its last seal: the newest heads then point past the log's end. Every
response to a member carries the newest head (``Tearline-Tree-Head``); members can fetch any head, a
consistency proof between two sizes (signed by the hub, with the root of the older size as the log holds
it now) and inclusion proofs of their own entries (``tree``), from the stored inner nodes of the tree.

Witnesses (tearline.witness). A member that keeps the heads it saw and checks each new one against the last
catches a hub that rewrote its history even with its own key: the rewritten log's older root, signed now,
contradicts the head signed then, and the two signatures are evidence anyone can check offline.

Verification (``verify``). ``tearline audit verify`` walks the chain and checks every checkpoint, head and
stored node. Anyone who can write the database could recompute the chain, so signatures should be checked
against the hub's published key (``--public-key``), never only against the keys recorded in the database.

Keys (``signing``). The private key is a PKCS#8 PEM file, readable by its owner only, created on first use
(``--audit-key``/``TEARLINE_AUDIT_KEY``; by default next to a SQLite store, or in ~/.tearline for a
PostgreSQL one). Its public key is recorded in ``audit_keys`` and printed by ``tearline audit key``: publish
it. ``tearline audit key --rotate`` signs with the old key, retires it and starts a new one; old signatures
stay verifiable with the retired public key.

Member export (``export``). ``tearline audit export --member NAME`` writes the member's own entries, each
with an inclusion proof into its signed checkpoint; ``tearline audit verify-export FILE --public-key HEX``
checks it with nothing but the file and the key.
"""

from .export import export, verify_export
from .log import FIELDS, GENESIS, AuditLog, admin_actor, bounded, entry_hash, latest, seal_lag
from .signing import (
    checkpoint_message,
    consistency_message,
    head_message,
    key_id,
    key_path,
    load_or_create_key,
    public_bytes,
    verify_signature,
)
from .tree import NODE_LEVEL, in_tree, inclusion_proof, merkle_root
from .verify import Report, verify

__all__ = ["FIELDS", "GENESIS", "NODE_LEVEL", "AuditLog", "Report", "admin_actor", "bounded", "checkpoint_message",
           "consistency_message", "entry_hash", "export", "head_message", "in_tree", "inclusion_proof", "key_id",
           "key_path", "latest", "load_or_create_key", "merkle_root", "public_bytes", "seal_lag", "verify",
           "verify_export", "verify_signature"]
