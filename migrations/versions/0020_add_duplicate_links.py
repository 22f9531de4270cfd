"""add duplicate links

Suggested duplicates (可能重复), joins (what a split rebuilds a reporter's own ticket from) and split pairs.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-04

"""

import sqlalchemy as sa
from alembic import op

import models.base

# revision identifiers, used by Alembic.
revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "duplicate_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("other_id", sa.Integer(), nullable=True),
        sa.Column("reporter_id", sa.Integer(), nullable=True),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("reason", sa.String(length=200), nullable=True),
        sa.Column("report", sa.JSON(), nullable=True),
        sa.Column("created_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["other_id"], ["tickets.id"], name=op.f("fk_duplicate_links_other_id_tickets")),
        sa.ForeignKeyConstraint(
            ["reporter_id"], ["ticket_reporters.id"], name=op.f("fk_duplicate_links_reporter_id_ticket_reporters")
        ),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"], name=op.f("fk_duplicate_links_ticket_id_tickets")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_duplicate_links")),
    )
    with op.batch_alter_table("duplicate_links", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_duplicate_links_other_id"), ["other_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_duplicate_links_ticket_id"), ["ticket_id"], unique=False)


def downgrade():
    with op.batch_alter_table("duplicate_links", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_duplicate_links_ticket_id"))
        batch_op.drop_index(batch_op.f("ix_duplicate_links_other_id"))
    op.drop_table("duplicate_links")
