"""add residents.follower_seen_at

When the official account's follower list (user/get) last named the resident: `flask sync-followers`
records followers who never wrote as residents.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-04

"""

import sqlalchemy as sa
from alembic import op

import models.base

# revision identifiers, used by Alembic.
revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("residents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("follower_seen_at", models.base.UTCDateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table("residents", schema=None) as batch_op:
        batch_op.drop_column("follower_seen_at")
