"""Duty to warn: a warning's life from draft to acknowledgement, or its waiver, every step recorded.

The model follows US ICD 191 (see ../shared/reference/sharing-anchors.md §5.2): credible and specific
information of an impending threat to people — a member of the compact or an outside party — obliges
its holder to warn them, unless a documented waiver applies. A warning is a STIX 2.1 report carrying
the Tearline warning extension (the threatened party, target, threat window, confidence, what is asked
of the recipient, and the text releasable at tear-line level); what is not releasable never enters it.

    draft ──approve──▶ approved ──deliver──▶ delivered ──acknowledge──▶ acknowledged
      └──waive──▶ waived            (any state before acknowledged ──▶ expired, once the window ends)
      ◀──overturn──┘ └──uphold──▶ waived      (a waiver's review)

Approval and waiver need a second person, never the author (two-person rule); a waiver is reviewed
by a third, neither its author nor who waived it, who upholds or overturns it with a reason. Every transition is a
row in ``warning_events`` and an entry in the audit trail; an illegal one is refused with the reason.

Delivery. To a member: into the compact's ``warnings`` collection as TLP:RED for that member alone, so
the outbound gate shows it to nobody else on any endpoint. To an outside party (registered with its
Ed25519 public key and contacts): a self-contained document — the STIX bundle and the warning's facts,
signed with the hub's published key (the audit key, under its own signing context) — written as JSON
and as HTML that embeds the same signed JSON. ``verify_document`` checks either offline against the
keys the recipient trusts. The party acknowledges with a reply it signs with its own key, bound to the
digest of the document it received; ``record_reply`` checks both before the warning moves on.

Escalation. A delivered warning not acknowledged within the compact's ``escalate_after_hours`` goes to
the addressee's contacts, one more each period, in the order listed: each is an ``escalate`` event and
an RFC 5322 message in the hub's outbox for the operator's mail relay.

Tear line. A draft can take its text from a report the drafter may read: its description as the drafter
receives it (tearline.release, so never more than it may read itself), and only if the addressee may read
that part by the compacts' granular markings (tearline.granular): a part's level is its own granular TLP
marking when it has one (the author marked that part on purpose), else the report's.

Modules: ``report`` (the warning as STIX), ``document`` (outside parties: the signed document, its check,
their signed reply), ``lifecycle`` (draft, steps, delivery), ``escalation``. What a member is shown of a warning is
tearline.release's.
"""

from .document import (
    DOCUMENT_FORMAT,
    REPLY_FORMAT,
    add_party,
    digest,
    make_reply,
    new_party_key,
    parties,
    read_document,
    render_html,
    sign_document,
    verify_document,
)
from .escalation import escalate
from .lifecycle import FINAL, MOVES, REVIEWS, WAIVERS, Record, draft, expire, list_, move, record_reply, show
from .report import EXTENSION_ID, Signer

__all__ = [
    "DOCUMENT_FORMAT", "EXTENSION_ID", "FINAL", "MOVES", "REPLY_FORMAT", "REVIEWS", "WAIVERS", "Record", "Signer",
    "add_party", "digest", "draft", "escalate", "expire", "list_", "make_reply", "move", "new_party_key", "parties",
    "read_document", "record_reply", "render_html", "show", "sign_document", "verify_document",
]
