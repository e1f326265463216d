"""One release path: what each member may not receive for want of what an object refers to (withheld),
pseudonymous stand-ins for authors' identities (persona), the date_added a client is shown
(date_added_us, shared by an envelope's objects), whether a version carries its own TLP marking (marked), and how each reference counts for closure (refs.req).
The gate no longer needs ends_rank.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("objects") as batch:
        batch.add_column(sa.Column("date_added_us", sa.BigInteger, nullable=True))
        batch.add_column(sa.Column("persona", sa.SmallInteger, nullable=False, server_default="0"))
        batch.add_column(sa.Column("marked", sa.Boolean, nullable=False, server_default=sa.true()))
        batch.drop_column("ends_rank")
    op.execute("UPDATE objects SET date_added_us = added_us")
    tlp_ids = ("94868c89-83c2-464b-929b-a1a8aa3c8487", "bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
               "55d920b0-5e8b-4f79-9ee9-91f868d9b421", "939a9414-2ddd-4d32-a0cd-375ea402b003",
               "e828b379-4e03-4974-9ac4-e53a884c97c1", "613f2e26-407d-48c7-9eca-b8e91df99dc9",
               "34098fce-860f-48ae-8e50-ebd3cc5e41da", "f88d31f6-486f-44da-b317-01333bde0b82",
               "5e57c739-391a-4eb3-b6be-7d15ca92d5ed")
    carries = " OR ".join(f"body LIKE '%marking-definition--{i}%'" for i in tlp_ids)
    op.execute(f"UPDATE objects SET marked = ({carries}) WHERE type <> 'marking-definition'")
    with op.batch_alter_table("objects") as batch:
        batch.alter_column("date_added_us", existing_type=sa.BigInteger, nullable=False)
    # an identity some object names as its author
    op.execute("UPDATE objects SET persona = 1 WHERE type = 'identity' AND EXISTS (SELECT 1 FROM refs r "
               "WHERE r.coll = objects.coll AND r.target_id = objects.stix_id AND r.prop = 'created_by_ref')")
    with op.batch_alter_table("refs") as batch:
        batch.add_column(sa.Column("req", sa.SmallInteger, nullable=False, server_default="0"))
    op.execute("UPDATE refs SET req = 1 WHERE prop IN ('source_ref', 'target_ref', 'sighting_of_ref', 'object_ref')")
    op.execute("UPDATE refs SET req = 2 WHERE prop = 'object_refs' AND added_us IN (SELECT added_us FROM objects "
               "WHERE type IN ('report', 'grouping', 'note', 'opinion', 'observed-data'))")
    op.execute("UPDATE refs SET req = 2 WHERE prop IN ('src_ref', 'dst_ref') AND added_us IN (SELECT added_us "
               "FROM objects WHERE type = 'network-traffic')")
    with op.batch_alter_table("hub_clock") as batch:
        batch.add_column(sa.Column("exposed_us", sa.BigInteger, nullable=False, server_default="0"))
    op.create_table(
        "withheld",
        sa.Column("member", sa.BigInteger, sa.ForeignKey("members.id", ondelete="CASCADE"), nullable=False),
        sa.Column("added_us", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("member", "added_us", name="pk_withheld"),
    )
    op.create_table(
        "upkeep",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    # what existed before has no withheld rows and no pseudonyms yet: the hub works them out when it
    # next opens the store (tearline.hub.upkeep), with the keys only it holds
    op.execute("INSERT INTO upkeep (name, value) SELECT 'release', 'stale' WHERE EXISTS (SELECT 1 FROM objects)")


def downgrade() -> None:
    op.drop_table("upkeep")
    op.drop_table("withheld")
    with op.batch_alter_table("hub_clock") as batch:
        batch.drop_column("exposed_us")
    with op.batch_alter_table("refs") as batch:
        batch.drop_column("req")
    with op.batch_alter_table("objects") as batch:
        batch.add_column(sa.Column("ends_rank", sa.SmallInteger, nullable=True))
        batch.drop_column("persona")
        batch.drop_column("date_added_us")
