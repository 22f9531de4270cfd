"""add broadcasts

Policy broadcasts and their recipient batches, the official-account tag mirror, resident tags, and on
residents: the notice opt-out, the tag-mirror state, the monthly mass-send counter and a (grid_code, id)
index for paging a node's residents in id order.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25

"""

import sqlalchemy as sa
from alembic import op

import models.base

# revision identifiers, used by Alembic.
revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "broadcasts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=64), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("link", sa.String(length=500), nullable=True),
        sa.Column("audience", sa.JSON(), nullable=False),
        sa.Column("channels", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("skip_over_limit", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("plan_state", sa.JSON(), nullable=False),
        sa.Column("report", sa.JSON(), nullable=False),
        sa.Column("planned_at", models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("cancelled_at", models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("cancelled_by", sa.String(length=128), nullable=True),
        sa.Column("created_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_broadcasts")),
    )
    with op.batch_alter_table("broadcasts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_broadcasts_status"), ["status"], unique=False)

    op.create_table(
        "broadcast_batches",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("broadcast_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("target", sa.String(length=64), nullable=True),
        sa.Column("recipients", sa.JSON(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("clientmsgid", sa.String(length=64), nullable=True),
        sa.Column("msg_id", sa.String(length=64), nullable=True),
        sa.Column("failed_count", sa.Integer(), nullable=False),
        sa.Column("errcode", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("reserved", sa.Boolean(), nullable=False),
        sa.Column("report", sa.JSON(), nullable=True),
        sa.Column("outbox_id", sa.Integer(), nullable=True),
        sa.Column("started_at", models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("sent_at", models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["broadcast_id"], ["broadcasts.id"], name=op.f("fk_broadcast_batches_broadcast_id_broadcasts")
        ),
        sa.ForeignKeyConstraint(["outbox_id"], ["outbox.id"], name=op.f("fk_broadcast_batches_outbox_id_outbox")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_broadcast_batches")),
        sa.UniqueConstraint(
            "broadcast_id", "channel", "seq", name=op.f("uq_broadcast_batches_broadcast_id_channel_seq")
        ),
    )
    with op.batch_alter_table("broadcast_batches", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_broadcast_batches_broadcast_id"), ["broadcast_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_broadcast_batches_msg_id"), ["msg_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_broadcast_batches_status"), ["status"], unique=False)

    op.create_table(
        "mp_tags",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("node_code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=30), nullable=False),
        sa.Column("tag_id", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mp_tags")),
        sa.UniqueConstraint("node_code", name=op.f("uq_mp_tags_node_code")),
    )

    op.create_table(
        "resident_tags",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("resident_id", sa.Integer(), nullable=False),
        sa.Column("tag", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(["resident_id"], ["residents.id"], name=op.f("fk_resident_tags_resident_id_residents")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_resident_tags")),
        sa.UniqueConstraint("resident_id", "tag", name=op.f("uq_resident_tags_resident_id_tag")),
    )
    with op.batch_alter_table("resident_tags", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_resident_tags_resident_id"), ["resident_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_resident_tags_tag"), ["tag"], unique=False)

    with op.batch_alter_table("residents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("notices", sa.Boolean(), nullable=False, server_default=sa.true()))
        batch_op.add_column(sa.Column("mp_tag_path", sa.String(length=400), nullable=True))
        batch_op.add_column(sa.Column("mp_tag_dirty", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column("mass_month", sa.String(length=7), nullable=True))
        batch_op.add_column(sa.Column("mass_count", sa.Integer(), nullable=False, server_default="0"))
        batch_op.create_index(batch_op.f("ix_residents_mp_tag_dirty"), ["mp_tag_dirty"], unique=False)
        batch_op.create_index("ix_residents_grid_code_id", ["grid_code", "id"], unique=False)

    # Residents we already place in a grid have never been tagged: the first tag sync takes them all.
    residents = sa.table("residents", sa.column("grid_code", sa.String), sa.column("mp_tag_dirty", sa.Boolean))
    op.execute(residents.update().where(residents.c.grid_code.isnot(None)).values(mp_tag_dirty=True))


def downgrade():
    with op.batch_alter_table("residents", schema=None) as batch_op:
        batch_op.drop_index("ix_residents_grid_code_id")
        batch_op.drop_index(batch_op.f("ix_residents_mp_tag_dirty"))
        batch_op.drop_column("mass_count")
        batch_op.drop_column("mass_month")
        batch_op.drop_column("mp_tag_dirty")
        batch_op.drop_column("mp_tag_path")
        batch_op.drop_column("notices")

    with op.batch_alter_table("resident_tags", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_resident_tags_tag"))
        batch_op.drop_index(batch_op.f("ix_resident_tags_resident_id"))
    op.drop_table("resident_tags")

    op.drop_table("mp_tags")

    with op.batch_alter_table("broadcast_batches", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_broadcast_batches_status"))
        batch_op.drop_index(batch_op.f("ix_broadcast_batches_msg_id"))
        batch_op.drop_index(batch_op.f("ix_broadcast_batches_broadcast_id"))
    op.drop_table("broadcast_batches")

    with op.batch_alter_table("broadcasts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_broadcasts_status"))
    op.drop_table("broadcasts")
