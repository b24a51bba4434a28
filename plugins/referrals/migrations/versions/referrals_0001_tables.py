"""referrals: codes, link opens, links, rewards, monthly totals (own branch, labelled "referrals").

Revision ID: referrals_0001
Revises:
Create Date: 2026-11-23 15:10:00

"""
from alembic import op

# revision identifiers, used by Alembic.
revision = "referrals_0001"
down_revision = None
branch_labels = ("referrals",)
depends_on = "core_0001"  # memberships and purchases must exist first

TABLES = (
    "referrals_codes", "referrals_opens", "referrals_links", "referrals_rewards", "referrals_monthly_totals",
)


def _tables():
    # The first revision builds exactly the tables the models declare (constraints included);
    # later revisions must spell out their changes.
    from plugins.referrals import models
    from webapp.extensions import db

    assert models.ReferralCode.__tablename__ == TABLES[0]
    return [db.metadata.tables[name] for name in TABLES]


def upgrade():
    bind = op.get_bind()
    for table in _tables():
        table.create(bind)


def downgrade():
    bind = op.get_bind()
    for table in reversed(_tables()):
        table.drop(bind)
