"""The write path: what an envelope may store, decided once, then written in one transaction.

    validate every object (tearline.stix) → check its RED recipients → close it under its required
    references → judge its scope (tearline.scope) → close it again → write the versions, their
    pseudonymous stand-ins and the status → settle what each member may now receive (tearline.visibility)

A writer is judged only on what it may see plus what it sends: a target hidden from it counts as absent,
so no answer of the hub tells it that a hidden object exists. What an envelope stores is closed under the
references its objects cannot do without (a relationship's ends, a sighting's sighting_of_ref, the
object_refs of a report or an observed-data …, tearline.stix.REQUIRED_REFS): each such target must be in
the collection (in the writer's sight) or admitted in the same envelope, else the object fails with a
message that names the target. Observables listed by an admitted observed-data are admitted with it (they
are what it observed); tearline.scope carries its distance to them.

Authorship. Every identity version written gets a pseudonymous stand-in (an identity with a keyed id and
no identifying property, tearline.keys) in the same collection, at the same TLP, for the members whose
profile hides authors; once any object names the identity as its author, those members see only the
stand-in (``persona``, tearline.visibility).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import orjson
from sqlalchemy import Connection, select

from .. import granular, limits, markings, scope, stix, visibility
from ..errors import Forbidden, NotFound, Unprocessable
from ..keys import HubKeys
from ..limits import MB, Limits
from ..model import NAME, Collection, Member, can_write
from ..store import Store, now_us
from ..store import objects as rows
from ..store.schema import api_roots as api_roots_table
from ..store.schema import objects as objects_table
from ..store.schema import recipients as recipients_table

_IDENTITY = "identity"
_DEFAULT_LIMITS = Limits()
# References to the TLP definitions are not indexed (half a feed's refs rows, naming five ids): a version's TLP
# is its tlp and marked columns, a tear line's is in its body, and markings are never required references, so
# no reader of refs needs them (tests/test_tlp_refs.py; migration 0019 dropped the old rows).
_TLP_IDS = frozenset(markings.RANK_OF_ID)


@dataclasses.dataclass
class _Candidate:
    index: int
    obj: dict[str, Any]
    refs: list[stix.Ref]

    @property
    def id(self) -> str:
        return str(self.obj["id"])

    def needs(self) -> list[tuple[str, str]]:
        """(property, target) of each reference this object cannot do without."""
        return [(prop, t) for path, prop, t in self.refs
                if path == prop and isinstance(t, str) and stix.required_ref_kind(self.obj, prop)]


@dataclasses.dataclass(frozen=True)
class Unseen:
    """For the guard alone: the ids a write named (objects or references) that the collection holds out of the
    writer's sight, hidden from it or honestly known from elsewhere in its compact (tearline.probes judges
    which, later), and the first added_us of the write (what stood before it is what counts)."""

    hidden: list[str]
    before_us: int


@dataclasses.dataclass
class _Plan:
    admitted: list[_Candidate]
    hops: dict[str, int]
    refused: dict[int, str]  # envelope index → why
    chains: dict[int, int]  # envelope index → the chain its version joins (tearline.visibility)
    # ids the envelope named (objects or references) that the collection holds out of the writer's sight
    hidden: list[str] = dataclasses.field(default_factory=list)
    # someone else's versions the writer sent back exactly as it receives them: a success, nothing written
    # (TAXII 2.1 §5.5: an exact duplicate is no error)
    duplicates: list[_Candidate] = dataclasses.field(default_factory=list)
    # whether an object of the envelope cannot do without an id the collection does not hold at all
    missing: bool = False


def add_envelope(store: Store, collection: Collection, writer: Member, envelope: Sequence[Any], keys: HubKeys,
                 today: dt.date | None = None, bounds: Limits = _DEFAULT_LIMITS,
                 record: Callable[[Connection, dict[str, Any]], None] | None = None,
                 received: Callable[[Connection, dict[str, Any]], bool] | None = None) -> dict[str, Any]:
    """Judge and store one envelope for ``writer``; return the TAXII status resource (§4.3.1), its
    failures listed up to ``bounds.failures`` (tearline.limits). ``record`` is called with the transaction
    and the status just before it commits (the audit entry, which then commits with the write or not at all).
    ``received`` says whether an object is exactly the writer's copy of a version it receives
    (tearline.release.received_copy): sent back, someone else's version is a success with nothing written. It
    is compared with the writer's copy, never the stored original, so that guessing what a copy leaves out
    (a redacted property, a part below the tear line) cannot be confirmed by which guess succeeds. The
    status's ``unseen`` is for the guard alone (tearline.probes.note): what the envelope named out of the
    writer's sight, left to the guard's scan to judge, so that a write naming a hidden id costs what one
    naming a missing id costs."""
    limits.check_envelope(len(envelope), bounds)
    if not can_write(writer, collection):
        raise Forbidden(f"member {writer.name!r} may not write to collection {collection.alias!r}")
    policy = collection.rules
    state = policy.state(today or dt.date.today())
    if state != "open":
        raise Forbidden(f"compact {collection.api_root!r} expired on {policy.expires}: it is {state}; "
                        "nothing more can be added")
    request_us = now_us()
    failures: list[dict[str, Any]] = []
    status_id = str(uuid.uuid4())
    with store.engine.begin() as conn:
        people = {m.name: m for m in store.members_of(conn, collection.api_root)}
        valid: list[_Candidate] = []
        for index, obj in enumerate(envelope):
            problems = limits.object_problems(obj, bounds)
            refs: list[stix.Ref] = []
            if not problems:
                problems, refs = stix.inspect(obj)
                if not problems:
                    problems = limits.reference_problems(refs, bounds)
            if not problems:
                problems = _recipient_problems(obj, policy.members_visible, people) or _tear_line_problems(obj)
            if problems:
                failures.append(_failure(index, obj, "; ".join(problems)))
            else:
                valid.append(_Candidate(index, obj, refs))
        successes, unseen = _store(store, conn, collection, valid, keys, visibility.Reader.of(writer), writer.id,
                                   failures, judged=True, sent={f["id"] for f in failures},
                                   peers=_peers(writer, policy, people), quota=bounds.storage_bytes,
                                   received=received)
        failures.sort(key=lambda f: f["index"])
        listed = limits.bounded_failures([{k: v for k, v in f.items() if k != "index"} for f in failures], bounds)
        status = {
            "id": status_id, "api_root": collection.api_root, "collection_id": collection.id, "member_id": writer.id,
            "request_us": request_us, "total_count": len(envelope), "success_count": len(successes),
            "failure_count": len(failures), "pending_count": 0,
            "successes": orjson.dumps(successes).decode(), "failures": orjson.dumps(listed).decode(),
            "pendings": "[]",
        }
        # the status is the member's to keep too (and refused objects leave nothing else to count)
        _charge(conn, writer.id, len(status["successes"]) + len(status["failures"]), bounds.storage_bytes)
        rows.save_status(conn, status)
        # ``unseen`` is for the guard alone (tearline.probes.note): never part of what the writer is told
        out = status | {"successes": successes, "failures": listed, "pendings": [], "unseen": unseen}
        if record is not None:
            record(conn, out)
    return out


def publish(store: Store, api_root: str, objs: list[dict[str, Any]], keys: HubKeys | None) -> int:
    """Write objects into a compact's intel collection as the hub (``hub_write``); how many new versions it
    stored (objects already there, unchanged, add none)."""
    intel = store.collection(api_root, "intel")
    if intel is None:
        raise NotFound(f"no compact named {api_root!r}")
    before = store.version_count(intel.num)
    with store.engine.begin() as conn:
        hub_write(store, conn, intel, objs, keys)
    return store.version_count(intel.num) - before


def hub_write(store: Store, conn: Connection, collection: Collection, objs: list[dict[str, Any]],
              keys: HubKeys | None) -> None:
    """Write objects the hub itself vouches for (TLP definitions, compact actors, delivered warnings,
    public events): they must be valid STIX and closed; they are not judged for scope."""
    checked = [(i, obj, *stix.inspect(obj)) for i, obj in enumerate(objs)]
    bad = [f"{obj.get('id')}: {'; '.join(problems)}" for _, obj, problems, _ in checked if problems]
    if bad:
        raise ValueError(f"the hub built invalid STIX: {bad}")
    failures: list[dict[str, Any]] = []
    _store(store, conn, collection, [_Candidate(i, obj, refs) for i, obj, _, refs in checked], keys, None, None,
           failures, judged=False)
    if failures:
        raise ValueError(f"the hub built objects that refer to nothing: {failures}")


def upkeep(store: Store, keys: HubKeys) -> None:
    """Work a migration left for the hub, which holds the keys: stand-ins for identities stored before the
    hub made them, and what every member may not receive."""
    if not store.upkeep_due("release"):
        return
    with store.engine.begin() as conn:
        for root in [r.name for r in conn.execute(select(api_roots_table.c.name))]:
            for coll in store.collections(root, conn):
                _stand_in_stored(conn, coll.num, root, keys)
            settle_members(store, conn, root, [m.name for m in store.members_of(conn, root)])
        store.upkeep_done(conn, "release")


def _stand_in_stored(conn: Connection, coll: int, api_root: str, keys: HubKeys) -> None:
    """Stand-ins for the stored identity versions that have none (written before the hub made them)."""
    idents = list(conn.execute(select(objects_table).where(objects_table.c.coll == coll,
                                                           objects_table.c.type == _IDENTITY,
                                                           objects_table.c.persona < 2)))
    pseudo = {r.stix_id: keys.pseudonym(api_root, r.stix_id) for r in idents}
    present = rows.held(conn, coll, sorted(set(pseudo.values())))
    todo = [r for r in idents if not any(v.version_us == r.version_us and v.chain == r.chain
                                         for v in present.get(pseudo[r.stix_id], ()))]
    if not todo:
        return
    base, _ = rows.claim_clock(conn, len(todo), now_us())
    added = {r.added_us: base + n for n, r in enumerate(todo)}
    rows.insert_versions(conn, [
        [coll, pseudo[r.stix_id], _IDENTITY, stix.SPEC_VERSION, r.version, r.version_us, added[r.added_us],
         r.date_added_us, None, r.tlp, r.author, r.hop, r.is_first, r.is_latest,
         orjson.dumps(_pseudonymous(orjson.loads(r.body), pseudo[r.stix_id])).decode(),
         2, r.marked, r.chain] for r in todo], [],
        [(added[a], m) for a, m in conn.execute(select(recipients_table.c.added_us, recipients_table.c.member).where(
            recipients_table.c.added_us.in_(list(added))))])


def settle_members(store: Store, conn: Connection, api_root: str, changed: Sequence[str]) -> None:
    """Members of ``api_root`` that are new, or whose ceiling or view of authors changed, get what they may
    not receive worked out again in every collection of the compact."""
    if not changed:
        return
    people = {m.name: m for m in store.members_of(conn, api_root)}
    for coll in store.collections(api_root, conn):
        for name in changed:
            member = people.get(name)
            if member is not None and member.can_read:
                visibility.recompute(conn, coll.num, visibility.Reader.of(member), coll.addressed_only)


def delete_versions(store: Store, collection: Collection, member: Member, stix_id: str, added: Sequence[int],
                    keys: HubKeys, record: Callable[[Connection], None] | None = None) -> None:
    """Delete versions of one object that ``member`` (or its peers) wrote (tearline.release.deletable chose
    them), with their pseudonymous stand-ins, and settle what every member may now receive. ``record``: as
    for add_envelope, called in the transaction before it commits, whether or not anything was deleted."""
    if not can_write(member, collection):
        raise Forbidden(f"member {member.name!r} may not delete from collection {collection.alias!r}")
    coll = collection.num
    with store.engine.begin() as conn:
        rows.claim_clock(conn, 1, now_us())  # serialises with every other write
        mine = _peers(member, collection.rules, {m.name: m for m in store.members_of(conn, collection.api_root)})
        held = rows.held(conn, coll, [stix_id])
        doomed = [v for v in held.get(stix_id, []) if v.added_us in set(added) and v.author in mine]
        if record is not None:
            record(conn)
        if doomed:
            _remove(store, conn, collection, keys, {stix_id: doomed})


def _remove(store: Store, conn: Connection, collection: Collection, keys: HubKeys,
            doomed: dict[str, list[rows.Held]]) -> None:
    """Delete these versions, with the pseudonymous stand-ins of identities among them, and settle what every
    member may now receive (inside the caller's write, which has claimed the clock)."""
    coll = collection.num
    ids = list(doomed)
    gone = [v.added_us for vs in doomed.values() for v in vs]
    for stix_id, versions in doomed.items():
        if stix_id.startswith(f"{_IDENTITY}--"):
            pseudo = keys.pseudonym(collection.api_root, stix_id)
            stood = {(v.chain, v.version_us) for v in versions}
            gone += [v.added_us for v in rows.held(conn, coll, [pseudo]).get(pseudo, [])
                     if (v.chain, v.version_us) in stood]
            ids.append(pseudo)
    readers = [visibility.Reader.of(m) for m in store.members_of(conn, collection.api_root) if m.can_read]
    before = visibility.snapshot(conn, coll, readers, ids, collection.addressed_only)
    rows.delete_versions(conn, coll, gone)
    visibility.forget(conn, gone)
    for i in ids:
        rows.reflag(conn, coll, i)
    visibility.settle(conn, coll, readers, ids, [], before, collection.addressed_only)


STATUS_DAYS = 7  # how long a status resource is kept for its member to read (it counts against its quota)


def prune_statuses(store: Store, now: int | None = None) -> int:
    """Drop status resources older than STATUS_DAYS (the hub's scanner does this as it goes)."""
    with store.engine.begin() as conn:
        return rows.prune_statuses(conn, (now or now_us()) - STATUS_DAYS * 86_400 * 1_000_000)


def peers_of(store: Store, member: Member, collection: Collection) -> set[int]:
    """Whose objects ``member`` may add versions to, revoke or delete (see ``_peers``)."""
    with store.engine.connect() as conn:
        people = {m.name: m for m in store.members_of(conn, collection.api_root)}
    return _peers(member, collection.rules, people)


def _peers(writer: Member, policy: Any, people: dict[str, Member]) -> set[int]:
    """Whose objects the writer may add versions to, revoke or delete: its own, and its organisation's other
    members' where the compact file says ``versions_by: organisation``."""
    mine = {writer.id}
    org = writer.profile.get("organisation")
    if policy.versions_by == "organisation" and org:
        mine |= {m.id for m in people.values() if m.profile.get("organisation") == org}
    return mine


def _failure(index: int, obj: Any, message: str) -> dict[str, Any]:
    ident = obj.get("id") if isinstance(obj, dict) and isinstance(obj.get("id"), str) else f"objects[{index}]"
    entry: dict[str, Any] = {"index": index, "id": ident, "message": message}
    version = stix.version_of(obj) if isinstance(obj, dict) else None
    if version:
        entry["version"] = version
    return entry


def _tear_line_problems(obj: dict[str, Any]) -> list[str]:
    """A tear line that would leave some reader an invalid copy is refused: each reader is cut the parts
    marked above it (tearline.granular), so every way a reader can stand — each ceiling, a RED recipient or
    not — is tried, and the copy it would receive held to the same validation as the object itself."""
    if "granular_markings" not in obj:
        return []
    tried: set[tuple[granular.Path, ...]] = set()
    for ceiling in markings.LEVELS:
        for recipient in (False, True):
            paths = tuple(sorted(granular.withheld(obj, granular.reader(ceiling, recipient)), key=repr))
            if not paths or paths in tried:
                continue
            tried.add(paths)
            problems = stix.validate(granular.cut(obj, paths))
            if problems:
                who = f"a reader at TLP:{ceiling.upper()}" + (" named as a recipient" if recipient else "")
                return [f"granular_markings: {who} would receive an invalid copy ({problems[0]}); mark the "
                        "parts so that what remains is still a valid object"]
    return []


def _recipient_problems(obj: dict[str, Any], members_visible: bool, people: dict[str, Member]) -> list[str]:
    wanted = obj.get("x_tearline_recipients")
    if wanted is None:
        return []
    if not isinstance(wanted, list) or not all(isinstance(n, str) for n in wanted):
        return ["x_tearline_recipients: must be a list of member names"]
    malformed = [n for n in wanted if not NAME.match(n)]
    if malformed:
        return [f"x_tearline_recipients: {', '.join(map(repr, malformed[:5]))} cannot be member names (lower-case "
                "letters, digits, '-' and '_', at most 63)"]
    if not members_visible:
        # Only where the compact lets members know each other may the hub say who is not one, or who may
        # not read RED; otherwise a name is kept and matches nobody, so probing names learns nothing.
        return []
    problems = []
    unknown = sorted(set(wanted) - set(people))
    if unknown:
        problems.append(f"x_tearline_recipients: not members of this compact: {', '.join(unknown)}")
    if markings.tlp_rank_of(obj) == markings.rank("red"):
        below = sorted(n for n in set(wanted) & set(people) if people[n].tlp_max != "red")
        if below:
            problems.append(f"x_tearline_recipients: {', '.join(below)} may not read TLP:RED (ceiling "
                            f"{', '.join(people[n].tlp_max for n in below)}), so could never read this")
    return problems


def _store(store: Store, conn: Connection, collection: Collection, valid: list[_Candidate], keys: HubKeys | None,
           reader: visibility.Reader | None, author: int | None, failures: list[dict[str, Any]],
           judged: bool, sent: set[str] | None = None, peers: set[int] | None = None,
           quota: int | None = None,
           received: Callable[[Connection, dict[str, Any]], bool] | None = None,
           ) -> tuple[list[dict[str, Any]], Unseen | None]:
    """Close, judge and write ``valid`` (failures appended in place); return the success records and what the
    envelope named out of the writer's sight (None when it named nothing of the kind). ``quota``:
    the most the author may have stored once this is written (tearline.limits; 422 and nothing written above)."""
    if not valid:
        return [], None
    identities = sum(1 for c in valid if c.obj["type"] == _IDENTITY)
    base, exposed = rows.claim_clock(conn, len(valid) + identities, now_us())
    plan = _plan(conn, collection, reader, valid, judged, sent or set(),
                 peers if peers is not None else ({author} if author is not None else set()), received)
    for c in valid:
        if c.index in plan.refused:
            failures.append(_failure(c.index, c.obj, plan.refused[c.index]))
    # judged later, as things stood before ``base`` (once written, an id the writer re-used would be its own)
    unseen = Unseen(plan.hidden, base) if plan.hidden or plan.missing else None
    successes = _write(store, conn, collection, plan, keys, author, base, exposed, quota)
    successes += [{"id": c.id, "version": stix.version_of(c.obj) or ""} for c in plan.duplicates]
    return successes, unseen


def _plan(conn: Connection, collection: Collection, reader: visibility.Reader | None, valid: list[_Candidate],
          judged: bool, sent: set[str], peers: set[int],
          received: Callable[[Connection, dict[str, Any]], bool] | None = None) -> _Plan:
    """Decide each object's chain (tearline.visibility), close the envelope under required references, judge
    its scope, close it again. Everything is judged on what the writer is given (``reader``; None is the
    hub, which sees everything). ``sent``: ids the envelope held that already failed (so a message can say
    the target was refused, not missing). ``peers``: the members whose objects the writer may add versions
    to (itself, and its organisation's other members where the compact says so)."""
    policy = collection.rules
    coll = collection.num
    ids = {c.id for c in valid}
    targets = {t for c in valid for _, _, t in c.refs if isinstance(t, str)}
    given = visibility.received(conn, coll, reader, ids | targets, collection.addressed_only)
    seen = {i: min(v.hop for v in vs) for i, vs in given.items()}
    held = rows.held(conn, coll, sorted(ids | targets) if reader is not None else sorted(ids))
    hidden = sorted(i for i in held if i not in given) if reader is not None else []
    count: dict[str, int] = {}
    for c in valid:
        count[c.id] = count.get(c.id, 0) + 1
    dependents: dict[str, list[_Candidate]] = {}
    for c in valid:
        for _, t in c.needs():
            dependents.setdefault(t, []).append(c)
    refused: dict[int, str] = {}
    chains: dict[int, int] = {}

    def refuse(c: _Candidate, why: str) -> list[_Candidate]:
        refused[c.index] = why
        count[c.id] -= 1
        return dependents.get(c.id, []) if count[c.id] == 0 else []

    def close(queue: list[_Candidate]) -> None:
        while queue:
            c = queue.pop()
            if c.index in refused:
                continue
            for prop, t in c.needs():
                if t in seen or count.get(t, 0) > 0:
                    continue
                why = (f"{prop}: {t} was refused in this envelope, and this cannot stand without it"
                       if t in ids or t in sent
                       else f"{prop}: {t} is not in this collection; send it in the same envelope")
                queue.extend(refuse(c, why))
                break

    queue = []
    foreign, duplicates = _chains(conn, valid, chains, held, given, reader, peers, received)
    for c in foreign:
        queue.extend(refuse(c, f"{c.id} was shared by another member, and only its sharer adds versions to it, "
                               "revokes or deletes it; share yours under an id of your own"))
    close(list(valid) + queue)
    again = {c.index for c in duplicates}
    kept = [c for c in valid if c.index not in refused and c.index not in again]
    hops = scope.distances(policy, [(c.obj, c.refs) for c in kept], seen)
    if judged and policy.actor_names:
        out = []
        for c in kept:
            why = scope.refusal(c.obj, hops[c.id], policy)
            if why:
                out.extend(refuse(c, why))
        close(out)
    # a refusal for a reference to a missing id reads as one to a hidden id: both leave the guard a note
    missing = reader is not None and any(t not in held and t not in ids for c in valid for _, t in c.needs())
    return _Plan([c for c in kept if c.index not in refused], hops, refused, chains, hidden,
                 [c for c in duplicates if c.index not in refused], missing)


def _chains(conn: Connection, valid: list[_Candidate], chains: dict[int, int], held: dict[str, list[rows.Held]],
            given: dict[str, list[visibility.Version]], reader: visibility.Reader | None, peers: set[int],
            received: Callable[[Connection, dict[str, Any]], bool] | None,
            ) -> tuple[list[_Candidate], list[_Candidate]]:
    """Fill ``chains`` for what the writer may version; return what it may not (someone else's, in its sight)
    and, of those, what it sent back exactly as it receives it (a duplicate: no error, nothing written)."""
    foreign, duplicates = [], []
    for c in valid:
        chain = _chain(c, held.get(c.id, []), reader, peers, given.get(c.id, []))
        if chain is not None:
            chains[c.index] = chain
        elif received is not None and received(conn, c.obj):
            duplicates.append(c)
        else:
            foreign.append(c)
    return foreign, duplicates


def _chain(c: _Candidate, held: list[rows.Held], reader: visibility.Reader | None, peers: set[int],
           given: list[visibility.Version]) -> int | None:
    """The chain a new version of ``c`` joins: the object's own (0) when it is new, the writer's or its
    peers', or an observable (whose id is its content: anyone may add what it saw of it); the writer's own
    chain when the object is someone else's and hidden from the writer (answered like a fresh write, and
    the hidden object untouched); None — refused — when it is someone else's and the writer sees it."""
    if reader is None or c.obj["type"] in stix.SCO_TYPES:
        return 0
    main = [h for h in held if h.chain == 0]
    if not main:
        return 0
    owner = min(main, key=lambda h: (h.version_us, h.added_us)).author
    if not any(v.chain == 0 for v in given):
        # hidden from the writer, even where it is a peer's (versions_by: organisation): answered like a fresh
        # write, on the writer's own chain, so nothing tells it the object exists
        return reader.id
    return 0 if owner is not None and owner in peers else None


def _write(store: Store, conn: Connection, collection: Collection, plan: _Plan, keys: HubKeys | None,
           author: int | None, base: int, exposed: int, quota: int | None = None) -> list[dict[str, Any]]:
    """Insert the admitted versions (and their stand-ins) and settle what every member may now receive."""
    coll, policy = collection.num, collection.rules
    successes: list[dict[str, Any]] = []
    entries: dict[tuple[str, int, int], _Candidate] = {}
    for c in plan.admitted:
        version = stix.version_of(c.obj)
        version_us = stix.to_us(stix.parse_timestamp(version)) if version else exposed
        successes.append({"id": c.id, "version": version or stix.format_us(exposed)})
        # the same version twice in one envelope is stored once
        entries.setdefault((c.id, plan.chains[c.index], version_us), c)
    idents = {i for (i, _, _), c in entries.items() if c.obj["type"] == _IDENTITY}
    if keys is None and idents:
        raise ValueError("writing identities needs the hub's keys (for their pseudonymous stand-ins)")
    stand_in = {i: keys.pseudonym(collection.api_root, i) for i in idents} if keys else {}
    held = rows.held(conn, coll, [*{i for i, _, _ in entries}, *stand_in.values()])
    span: dict[tuple[str, int], tuple[int, int]] = {}
    for i, vs in held.items():
        for v in vs:
            lo, hi = span.get((i, v.chain), (v.version_us, v.version_us))
            span[(i, v.chain)] = (min(lo, v.version_us), max(hi, v.version_us))
    new_rows: list[list[Any]] = []
    new_refs: list[tuple[Any, ...]] = []
    named: list[tuple[int, str]] = []
    offset = 0

    def add(stix_id: str, chain: int, obj: dict[str, Any], version: str, version_us: int, tlp: int, hop: int,
            persona: int, refs: list[stix.Ref], recipients: tuple[str, ...]) -> int | None:
        nonlocal offset
        if any(v.version_us == version_us and v.chain == chain for v in held.get(stix_id, ())):
            return None  # already held: a success, nothing to write
        added = base + offset
        offset += 1
        lo, hi = span.get((stix_id, chain), (version_us, version_us))
        span[(stix_id, chain)] = (min(lo, version_us), max(hi, version_us))
        new_rows.append([coll, stix_id, obj["type"], obj.get("spec_version", stix.SPEC_VERSION), version, version_us,
                         added, exposed, obj.get("created_by_ref"), tlp, author, hop, None, None,
                         orjson.dumps(obj).decode(), persona,
                         obj.get("id") in markings.RANK_OF_ID or markings.tlp_rank_of(obj) is not None, chain])
        new_refs.extend((added, coll, path, target, stix.required_ref_kind(obj, prop) if path == prop else 0)
                        for path, prop, target in refs if target not in _TLP_IDS)
        named.extend((added, name) for name in recipients)
        return added

    for (stix_id, chain, version_us), c in entries.items():
        obj = c.obj
        version = stix.version_of(obj) or stix.format_us(exposed)
        tlp = scope.tlp_rank(obj, policy)
        hop = min(plan.hops.get(stix_id, scope.UNREACHED), scope.UNREACHED)
        recipients = tuple(obj.get("x_tearline_recipients") or ())
        identity = obj["type"] == _IDENTITY
        added = add(stix_id, chain, obj, version, version_us, tlp, hop, 1 if identity else 0, c.refs, recipients)
        if added is not None and identity:
            pseudo = stand_in[stix_id]
            add(pseudo, chain, _pseudonymous(obj, pseudo), version, version_us, tlp, hop, 2, [], recipients)
    if author is not None and new_rows:
        # what the rows take: the version's JSON and each reference's path and target (a path can be long)
        _charge(conn, author, sum(len(r[14].encode()) for r in new_rows)
                + sum(len(str(e[2]).encode()) + len(str(e[3]).encode()) for e in new_refs), quota)
    changed = {r[1] for r in new_rows}
    readers = [visibility.Reader.of(m) for m in store.members_of(conn, collection.api_root) if m.can_read]
    before = visibility.snapshot(conn, coll, readers, changed, collection.addressed_only)
    for row in new_rows:
        lo, hi = span[(row[1], row[17])]
        row[12], row[13] = lo == row[5], hi == row[5]
    rows.insert_versions(conn, new_rows, new_refs, named)
    rows.set_flags(conn, coll, [(i, v.chain, v.version_us, v.version_us == span[(i, v.chain)][0],
                                 v.version_us == span[(i, v.chain)][1])
                                for i, vs in held.items() for v in vs
                                if (v.is_first, v.is_latest) != (v.version_us == span[(i, v.chain)][0],
                                                                 v.version_us == span[(i, v.chain)][1])])
    visibility.settle(conn, coll, readers, changed, [r[6] for r in new_rows], before, collection.addressed_only)
    return successes


def _charge(conn: Connection, author: int, size: int, quota: int | None) -> None:
    """Count what the author stores (bytes of versions, references and statuses); refuse the whole envelope
    (nothing of it written) past its quota."""
    if quota is not None:
        have = rows.stored(conn, author)
        if have + size > quota:
            raise Unprocessable(f"this member has {have / MB:,.1f} MB stored in this compact "
                                  f"and the envelope would add {size / MB:,.1f} MB; "
                                  f"its quota is {quota / MB:,.0f} MB (member_storage_mb): "
                                  "delete or revoke what is no longer needed, or ask the hub's operator",
                                  details={"stored_bytes": have, "envelope_bytes": size, "quota_bytes": quota})
    rows.add_usage(conn, author, size)


def _pseudonymous(real: dict[str, Any], pseudo: str) -> dict[str, Any]:
    """The stand-in for an author's identity: its versions and its markings, nothing that says who."""
    out = {"type": _IDENTITY, "spec_version": stix.SPEC_VERSION, "id": pseudo, "created": real["created"],
           "modified": real["modified"], "name": f"Pseudonymous source {pseudo[10:18]}", "identity_class": "unknown"}
    if real.get("object_marking_refs"):
        out["object_marking_refs"] = real["object_marking_refs"]
    if real.get("revoked") is True:
        out["revoked"] = True
    return out

