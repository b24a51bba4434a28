"""gamification: its money and points columns become 64-bit (``bigint``) on PostgreSQL.

A bill may be up to ``MAX_AMOUNT`` (10**12 minor units) and a week's or a card's sums grow past
2**31 (about 21 million tenge, or 1,700 dollars in so'm); PostgreSQL's ``integer`` refused them.
SQLite keeps every integer in up to 64 bits already, so nothing changes there.

Revision ID: gamification_0002
Revises: gamification_0001
Create Date: 2026-12-07 13:30:00

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "gamification_0002"
down_revision = "gamification_0001"
branch_labels = None
depends_on = None

# (table, column, nullable)
COLUMNS = [
    ("gamification_levels", "threshold", False),
]


def _retype(new_type, old_type) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column, nullable in COLUMNS:
        op.alter_column(table, column, type_=new_type, existing_type=old_type, existing_nullable=nullable)


def upgrade():
    _retype(sa.BigInteger(), sa.Integer())


def downgrade():
    # Fails where a value no longer fits in 32 bits: such a database cannot go back.
    _retype(sa.Integer(), sa.BigInteger())
