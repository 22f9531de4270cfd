"""add region retirement

A region node the county's file no longer lists is retired, not deleted: it stays for history and
statistics (old tickets point at it) but receives no new work.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-04

"""

import sqlalchemy as sa
from alembic import op

import models.base

# revision identifiers, used by Alembic.
revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("region_nodes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("retired_at", models.base.UTCDateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table("region_nodes", schema=None) as batch_op:
        batch_op.drop_column("retired_at")
