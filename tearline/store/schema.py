"""The tables of the hub, identical on SQLite and PostgreSQL.

Objects are kept as versions: one row per (collection, id, version), with the JSON body as it was
received and the columns TAXII filters on. ``added_us`` (date_added in microseconds) is unique across
the store, handed out by ``hub_clock``, so it orders pages and serves as the paging cursor.
``is_latest``/``is_first`` are kept up to date on write, so match[version]=last|first is an index
lookup instead of a GROUP BY over every version.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    true,
)

metadata = MetaData()

# SQLite only auto-increments an INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer(), "sqlite")

api_roots = Table(
    "api_roots",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("title", Text, nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("created_us", BigInteger, nullable=False),
    # the compact's scope and dates as JSON (tearline.model.Policy)
    Column("policy", Text, nullable=False, server_default="{}"),
)

collections = Table(
    "collections",
    metadata,
    # A small integer key: it leads every object index, so it is kept narrow.
    Column("num", Integer, primary_key=True, autoincrement=True),
    Column("id", String(36), nullable=False, unique=True),
    Column("api_root", String(64), ForeignKey("api_roots.name", ondelete="CASCADE"), nullable=False),
    Column("alias", String(64), nullable=False),
    Column("title", Text, nullable=False),
    Column("description", Text, nullable=False, default=""),
    # Members may write through TAXII only where this is true (the warnings collection is written by
    # the duty-to-warn workflow, not by POSTs).
    Column("member_writable", Boolean, nullable=False, default=True),
    UniqueConstraint("api_root", "alias", name="uq_collections_alias"),
)

members = Table(
    "members",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("api_root", String(64), ForeignKey("api_roots.name", ondelete="CASCADE"), nullable=False),
    Column("name", String(128), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("can_read", Boolean, nullable=False, default=True),
    Column("can_write", Boolean, nullable=False, default=False),
    Column("tlp_max", String(16), nullable=False, default="clear"),
    Column("profile", Text, nullable=False, default="{}"),
    UniqueConstraint("api_root", "name", name="uq_members_name"),
)

# People within a member, each with a token of their own (tearline.compact ``people``): a step that needs two
# people (approving a warning) needs two logins.
people = Table(
    "people",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("member", BigInteger, ForeignKey("members.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(64), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    UniqueConstraint("member", "name", name="uq_people_name"),
)

objects = Table(
    "objects",
    metadata,
    Column("pk", BigId, primary_key=True, autoincrement=True),
    Column("coll", Integer, ForeignKey("collections.num", ondelete="CASCADE"), nullable=False),
    Column("stix_id", String(300), nullable=False),
    Column("type", String(250), nullable=False),
    Column("spec_version", String(8), nullable=False),
    Column("version", Text, nullable=False),  # modified (or created): STIX sets no limit on its precision
    Column("version_us", BigInteger, nullable=False),
    Column("added_us", BigInteger, nullable=False),
    Column("created_by_ref", String(300)),
    Column("is_latest", Boolean, nullable=False),
    Column("is_first", Boolean, nullable=False),
    Column("body", Text, nullable=False),
    # TLP rank of this version (0 clear … 4 red), the member that wrote it (NULL: the hub itself), and
    # its distance in hops from the compact's actors when it was admitted
    Column("tlp", SmallInteger, nullable=False, server_default="0"),
    Column("author", BigInteger, nullable=True),
    Column("hop", SmallInteger, nullable=False, server_default="0"),
    # The date_added a client is shown: the same for every object of one envelope (a gap between two
    # values then counts envelopes, never the objects between them a member may not see); added_us
    # stays unique and orders pages. Every version's added_us is at or after its date_added_us.
    Column("date_added_us", BigInteger, nullable=False),
    # For members whose profile hides authors (tearline.visibility): 0 an ordinary version; 1 an identity
    # (such members never see one but their own); 2 an identity's pseudonymous stand-in (only they see it).
    Column("persona", SmallInteger, nullable=False, server_default="0"),
    # Whose chain of versions this is: 0 the object's own (its first sharer's), read by the compact's rules;
    # a member's id for the versions that member wrote of an id hidden from it, which only it reads.
    Column("chain", BigInteger, nullable=False, server_default="0"),
    # whether the version carries a TLP marking of its own (else the compact's default governs it, and
    # readers' copies say so)
    Column("marked", Boolean, nullable=False, server_default=true()),
    # the peer hub (peers.id) a mirrored version came from; 0: this hub's own (tearline.peering)
    Column("origin", Integer, nullable=False, server_default="0"),
    UniqueConstraint("coll", "stix_id", "chain", "version_us", name="uq_objects_version"),
    Index("ix_objects_added", "coll", "added_us"),
    Index("ix_objects_type_added", "coll", "type", "added_us"),
)

refs = Table(
    "refs",
    metadata,
    # The object version a reference belongs to, by its date_added (unique and increasing, so this
    # index is appended to, never split in the middle).
    Column("added_us", BigInteger, nullable=False),
    Column("coll", Integer, nullable=False),
    Column("prop", Text, nullable=False),  # the path: nested references have long ones
    Column("target_id", String(300), nullable=False),
    # how the reference counts for closure (tearline.stix.REQ_*): 0 optional, 1 needed, 2 one of a list
    # of which at least one is needed
    Column("req", SmallInteger, nullable=False, server_default="0"),
    Index("ix_refs_added", "added_us"),
    Index("ix_refs_target", "coll", "target_id"),
)

# The members named on a TLP:RED object version (x_tearline_recipients): only they, and its author, see it.
recipients = Table(
    "recipients",
    metadata,
    Column("added_us", BigInteger, nullable=False),
    Column("member", String(128), nullable=False),
    Index("ix_recipients_added", "added_us", "member"),
)

statuses = Table(
    "statuses",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("api_root", String(64), nullable=False),
    Column("collection_id", String(36), nullable=False),
    Column("member_id", BigInteger, nullable=False),
    Column("request_us", BigInteger, nullable=False),
    Column("total_count", Integer, nullable=False),
    Column("success_count", Integer, nullable=False),
    Column("failure_count", Integer, nullable=False),
    Column("pending_count", Integer, nullable=False),
    Column("successes", Text, nullable=False),
    Column("failures", Text, nullable=False),
    Column("pendings", Text, nullable=False),
)

hub_clock = Table(
    "hub_clock",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("last_us", BigInteger, nullable=False),  # the last added_us handed out
    Column("exposed_us", BigInteger, nullable=False, server_default="0"),  # the last date_added shown
)

# The versions a member may not receive although their own TLP would let it: every target of one of
# their required references is out of its sight (tearline.visibility keeps this exact as objects come
# and go, and as members change).
withheld = Table(
    "withheld",
    metadata,
    Column("member", BigInteger, ForeignKey("members.id", ondelete="CASCADE"), nullable=False),
    Column("added_us", BigInteger, nullable=False),
    PrimaryKeyConstraint("member", "added_us", name="pk_withheld"),
)

# What each member has stored: the characters of the object versions it wrote (its quota, tearline.limits),
# kept by the write path in the same transaction as the versions.
usage = Table(
    "usage",
    metadata,
    Column("member", BigInteger, ForeignKey("members.id", ondelete="CASCADE"), primary_key=True),
    Column("stored", BigInteger, nullable=False, server_default="0"),
)

# Work the hub owes the store once it opens it with its keys (after a migration that needs them).
upkeep = Table(
    "upkeep",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("value", Text, nullable=False),
)

# Private matching: the mailbox through which two members' PSI messages pass. The hub keeps only
# blinded messages (see tearline.matching.protocol), who asked whom, the value type and the sizes.
match_requests = Table(
    "match_requests",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("api_root", String(64), ForeignKey("api_roots.name", ondelete="CASCADE"), nullable=False),
    Column("asker", String(128), nullable=False),
    Column("answerer", String(128), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("results", String(8), nullable=False),  # 'asker', or 'both' (the answerer asks back)
    Column("status", String(16), nullable=False),  # pending, answered, declined, expired
    Column("consent", String(16), nullable=False),  # 'ask' or 'standing' (a rule of the compact file)
    Column("created_us", BigInteger, nullable=False),
    Column("expires_us", BigInteger, nullable=False),
    Column("asked", Integer, nullable=False),  # number of values in the request
    Column("fpr", Float, nullable=False),
    Column("reverse_of", String(36), nullable=True),
    Column("request", LargeBinary, nullable=True),  # dropped once answered
    Column("reply", LargeBinary, nullable=True),  # dropped once collected
    Index("ix_match_answerer", "api_root", "answerer", "status"),
    Index("ix_match_pair", "api_root", "asker", "answerer", "created_us"),
)

# Every mailbox action, kept for the audit trail.
match_log = Table(
    "match_log",
    metadata,
    Column("seq", BigId, primary_key=True, autoincrement=True),
    Column("at_us", BigInteger, nullable=False),
    Column("api_root", String(64), nullable=False),
    Column("member", String(128), nullable=False),
    Column("action", String(32), nullable=False),
    Column("request_id", String(36), nullable=True),
    Column("detail", Text, nullable=False, server_default="{}"),
)

# The audit trail: one row per request and per admin action, hash-chained (each row's hash covers its
# content and the previous row's hash), with Ed25519-signed checkpoints over Merkle roots of ranges.
# Rows are only ever inserted; tearline.audit.verify finds any edit, deletion, insertion, reordering
# or truncation.
audit = Table(
    "audit",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("at_us", BigInteger, nullable=False),
    Column("actor", String(160), nullable=True),  # member name, "admin:<user>", or NULL if unauthenticated
    Column("api_root", String(64), nullable=True),
    Column("method", String(10), nullable=False),
    Column("endpoint", String(200), nullable=False),  # the route, e.g. /taxii2/{api_root}/collections/…
    Column("path", Text, nullable=False),
    Column("query", Text, nullable=False),  # JSON: the filters asked
    Column("status", Integer, nullable=False),
    Column("reason", Text, nullable=False),  # why it was refused, when it was
    Column("ids", Text, nullable=False),  # JSON: the object ids returned or written
    Column("count", Integer, nullable=False),
    Column("prev", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    # random, in the hash: without it a member shown a neighbour's hash (its own entry's prev, a sibling in
    # an inclusion proof) could confirm a guess of what another member did. NULL in entries made before it.
    Column("nonce", String(32), nullable=True),
    Index("ix_audit_actor", "api_root", "actor", "seq"),
)

audit_checkpoints = Table(
    "audit_checkpoints",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),  # last entry covered
    Column("first_seq", BigInteger, nullable=False),
    Column("root", String(64), nullable=False),  # Merkle root of the hashes of entries first_seq..seq
    Column("head", String(64), nullable=False),  # the hash of entry seq (the chain at that point)
    Column("at_us", BigInteger, nullable=False),
    Column("key_id", String(16), nullable=False),
    Column("signature", String(128), nullable=False),
)

# Signed tree heads: the Merkle tree hash (RFC 6962) of the first ``size`` entries, signed when the hub seals
# the log (every few seconds while entries arrive, with `tearline audit checkpoint`, at shutdown).
# ``frontier`` holds the roots of the perfect subtrees covering those entries, so the next seal hashes only
# what came since.
audit_heads = Table(
    "audit_heads",
    metadata,
    Column("size", BigInteger, primary_key=True, autoincrement=False),
    Column("root", String(64), nullable=False),
    Column("at_us", BigInteger, nullable=False),
    Column("key_id", String(16), nullable=False),
    Column("signature", String(128), nullable=False),
    Column("frontier", Text, nullable=True),  # JSON [[level, hex], ...]; kept on the newest head only
)

# The roots of the audit tree's perfect subtrees of 2^level entries, level >= NODE_LEVEL, stored as sealing
# completes them, so that a proof reads O(log n) rows rather than hashing the whole log.
audit_nodes = Table(
    "audit_nodes",
    metadata,
    Column("level", Integer, primary_key=True, autoincrement=False),
    Column("idx", BigInteger, primary_key=True, autoincrement=False),
    Column("hash", String(64), nullable=False),
)

audit_keys = Table(
    "audit_keys",
    metadata,
    Column("key_id", String(16), primary_key=True),
    Column("public_key", String(64), nullable=False),  # raw Ed25519 public key, hex
    Column("created_us", BigInteger, nullable=False),
    Column("retired_us", BigInteger, nullable=True),
)

# Alerts raised by probe detection over the audit trail, and how far the scan has read.
guard_alerts = Table(
    "guard_alerts",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("at_us", BigInteger, nullable=False),
    Column("api_root", String(64), nullable=True),
    Column("member", String(128), nullable=False),
    Column("rule", String(32), nullable=False),
    Column("score", Integer, nullable=False),
    Column("count", Integer, nullable=False),
    Column("first_seq", BigInteger, nullable=False),
    Column("last_seq", BigInteger, nullable=False),
    Column("explains", Text, nullable=False),
    Column("evidence", Text, nullable=False),  # JSON: the audit entries (seq) behind the alert
    Column("status", String(16), nullable=False),  # open or dismissed
    UniqueConstraint("api_root", "member", "rule", "last_seq", name="uq_guard_alert"),
)

guard_cursor = Table(
    "guard_cursor",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("seq", BigInteger, nullable=False),  # the last audit entry the scan has read
)

# What the hub noticed about a request that its audit entry may not say: the entry is the member's to
# export, and how many ids of a write the collection holds out of the writer's sight must not reach it.
guard_notes = Table(
    "guard_notes",
    metadata,
    Column("seq", BigInteger, primary_key=True),  # the audit entry's
    Column("hidden", Integer, nullable=False),  # ids the write named (objects or references) hidden from the writer
    Column("named", Text),  # JSON: the first of them (tearline.probes.SIGHT_LOOKUPS), for the scan to judge
    Column("before_us", BigInteger),  # the write's first added_us: they are judged as things stood before it
)

# Token buckets shared by every hub process on the store (tearline.cluster): one member, one limit, however
# many processes serve it. ``at`` is the database's clock, so processes on machines whose clocks differ agree.
# UNLOGGED on PostgreSQL (migration 0017): a bucket lost to a crash refills, and every request takes from one.
rate_buckets = Table(
    "rate_buckets",
    metadata,
    Column("bucket", String(200), primary_key=True),
    Column("tokens", Float, nullable=False),
    Column("at", Float, nullable=False),
    Column("granted", Boolean, nullable=False),  # whether the last take found its tokens
)

# Signed-in dashboard browsers (tearline.web.dashboard): the id is stored hashed, the member's token never; the
# credential is the hash the member's token (or the operator's) had at sign-in, so a rotation ends the session.
ui_sessions = Table(
    "ui_sessions",
    metadata,
    Column("id_hash", String(64), primary_key=True),
    Column("kind", String(16), nullable=False),  # member or operator
    Column("name", String(300), nullable=False),  # as signed in with: member, or member/person
    Column("api_root", String(64), nullable=True),
    Column("credential", String(64), nullable=False),
    Column("csrf", String(64), nullable=False),
    Column("until", Float, nullable=False),
    Index("ix_ui_sessions_until", "until"),
)

# Duty-to-warn warnings and every step of their lifecycle (tearline.warn).
warnings = Table(
    "warnings",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("api_root", String(64), ForeignKey("api_roots.name", ondelete="CASCADE"), nullable=False),
    Column("author", String(160), nullable=False),
    Column("addressee", String(160), nullable=False),
    Column("outside", Boolean, nullable=False),  # an outside party rather than a member
    Column("state", String(16), nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Column("window_end", String(10), nullable=False),  # YYYY-MM-DD: expired after it
    Column("report", Text, nullable=False),  # the STIX report with the Tearline warning extension
    Column("author_member", String(64), nullable=True),  # drafted through the API by this member
    Column("source", Text, nullable=True),  # the report its text came from (never shown to the addressee)
    Column("document", Text, nullable=True),  # the signed document delivered to an outside party
)

# Outside parties a warning can be addressed to: their key signs their acknowledgements.
warn_parties = Table(
    "warn_parties",
    metadata,
    Column("name", String(160), primary_key=True),
    Column("public_key", String(64), nullable=False),  # Ed25519, hex
    Column("tlp_max", String(16), nullable=False),  # parts marked above this stay below the tear line
    Column("contacts", Text, nullable=False),  # JSON list, in escalation order
    Column("added_us", BigInteger, nullable=False),
)

warning_events = Table(
    "warning_events",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("warning_id", String(36), ForeignKey("warnings.id", ondelete="CASCADE"), nullable=False),
    Column("at_us", BigInteger, nullable=False),
    Column("by", String(160), nullable=False),
    Column("action", String(16), nullable=False),
    Column("from_state", String(16), nullable=True),
    Column("to_state", String(16), nullable=False),
    Column("note", Text, nullable=False),
)


# Hubs this one mirrors a compact from (tearline.peering): where, as whom, and how far the pull has come.
peers = Table(
    "peers",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("api_root", String(200), ForeignKey("api_roots.name", ondelete="CASCADE"), nullable=False),  # the mirror
    Column("url", Text, nullable=False),  # the peer's TAXII collection URL (…/collections/{id}/)
    Column("member", String(200), nullable=False),  # this hub's member name there
    Column("token", Text, nullable=False),  # its token there: the peer's secret, kept as a client keeps one
    Column("client_cert", Text, nullable=False, server_default=""),  # PEM files this hub presents
    Column("client_key", Text, nullable=False, server_default=""),
    Column("server_ca", Text, nullable=False, server_default=""),  # the only certificates trusted for the peer
    Column("added_after", Text),  # date_added of the last complete pull; NULL: from the beginning
    Column("next", Text),  # the page token of a pull cut short, to resume it
    Column("pulled", BigInteger, nullable=False, server_default="0"),
    Column("pushed_us", BigInteger, nullable=False, server_default="0"),  # added_us of the last version pushed
    Column("pushed", BigInteger, nullable=False, server_default="0"),
    Column("push_refused", BigInteger, nullable=False, server_default="0"),
    Column("last_try_us", BigInteger),
    Column("last_ok_us", BigInteger),
    Column("last_error", Text),
)
