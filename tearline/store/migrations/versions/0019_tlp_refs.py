"""References to the TLP definitions are no longer indexed (tearline.write): a version's own TLP is its ``tlp``
and ``marked`` columns, a tear line's is in its body, and no reader of ``refs`` needs them. The rows already
stored go, and what their authors were charged for them (tearline.limits: each reference's path and
target) comes off their usage, as deleting their versions would have taken it off.

Revision ID: 0019
Revises: 0018
"""

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

# TLP 2.0's five definitions and TLP 1.0's four (tearline.markings), as they stood when this was written
TLP_IDS = tuple(f"marking-definition--{i}" for i in (
    "94868c89-83c2-464b-929b-a1a8aa3c8487", "bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
    "55d920b0-5e8b-4f79-9ee9-91f868d9b421", "939a9414-2ddd-4d32-a0cd-375ea402b003",
    "e828b379-4e03-4974-9ac4-e53a884c97c1", "613f2e26-407d-48c7-9eca-b8e91df99dc9",
    "34098fce-860f-48ae-8e50-ebd3cc5e41da", "f88d31f6-486f-44da-b317-01333bde0b82",
    "5e57c739-391a-4eb3-b6be-7d15ca92d5ed"))


def upgrade() -> None:
    conn = op.get_bind()
    ids = sa.bindparam("ids", expanding=True)
    charged = conn.execute(sa.text(
        "SELECT o.author, SUM(LENGTH(r.prop) + LENGTH(r.target_id)) FROM refs r JOIN objects o "
        "ON o.coll = r.coll AND o.added_us = r.added_us WHERE r.target_id IN :ids AND o.author IS NOT NULL "
        "GROUP BY o.author").bindparams(ids), {"ids": list(TLP_IDS)}).all()
    for author, size in charged:
        conn.execute(sa.text("UPDATE usage SET stored = stored - :size WHERE member = :member"),
                     {"size": int(size), "member": int(author)})
    conn.execute(sa.text("DELETE FROM refs WHERE target_id IN :ids").bindparams(ids), {"ids": list(TLP_IDS)})


def downgrade() -> None:
    # Nothing to put back: the code before this revision reads no TLP reference row either (the dashboard's
    # list of what refers to a TLP definition excepted, which then shows only versions written later), and
    # deleting a version frees what its remaining rows hold, as usage now counts them.
    pass
