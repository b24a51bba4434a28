"""group_deals: deals, tiers, pledges, vouchers, ideas and votes.

The plugin's own Alembic branch, labelled "group_deals".

Revision ID: group_deals_0001
Revises:
Create Date: 2026-12-07 03:45:00

"""
import sqlalchemy as sa
from alembic import op

revision = "group_deals_0001"
down_revision = None
branch_labels = ("group_deals",)
depends_on = "core_0001"  # merchants, users, memberships and purchases must exist first

TZ = sa.DateTime(timezone=True)


def upgrade():
    op.create_table(
        "group_deals_ideas",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("merchant_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("membership_id", sa.Integer(), nullable=True),
        sa.Column("text", sa.String(length=500), nullable=False),
        sa.Column("votes", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("answer", sa.String(length=500), nullable=False),
        sa.Column("reward_points", sa.Integer(), nullable=False),
        sa.Column("rewarded_at", TZ, nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.CheckConstraint("status IN ('open', 'answered', 'dealt')", name=op.f("ck_group_deals_ideas_status_known")),
        sa.CheckConstraint("votes >= 0", name=op.f("ck_group_deals_ideas_votes_not_negative")),
        sa.CheckConstraint("reward_points >= 0", name=op.f("ck_group_deals_ideas_reward_not_negative")),
        sa.ForeignKeyConstraint(["merchant_id"], ["merchants.id"], name=op.f("fk_group_deals_ideas_merchant_id_merchants")),
        sa.ForeignKeyConstraint(["membership_id"], ["memberships.id"], name=op.f("fk_group_deals_ideas_membership_id_memberships"), ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_group_deals_ideas_user_id_users"), ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_group_deals_ideas")),
    )
    op.create_index("ix_group_deals_ideas_merchant_votes", "group_deals_ideas", ["merchant_id", "votes"])
    op.create_table(
        "group_deals_deals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("merchant_id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=120), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("photo_filename", sa.String(length=64), nullable=True),
        sa.Column("regular_price", sa.Integer(), nullable=False),
        sa.Column("max_participants", sa.Integer(), nullable=True),
        sa.Column("max_quantity", sa.Integer(), nullable=False),
        sa.Column("deadline", TZ, nullable=False),
        sa.Column("redeem_days", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("participants", sa.Integer(), nullable=False),
        sa.Column("views", sa.Integer(), nullable=False),
        sa.Column("final_price", sa.Integer(), nullable=True),
        sa.Column("idea_id", sa.Integer(), nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("published_at", TZ, nullable=True),
        sa.Column("closed_at", TZ, nullable=True),
        sa.CheckConstraint("status IN ('draft', 'open', 'closed', 'cancelled')", name=op.f("ck_group_deals_deals_status_known")),
        sa.CheckConstraint("regular_price > 0", name=op.f("ck_group_deals_deals_regular_price_positive")),
        sa.CheckConstraint("max_quantity >= 1", name=op.f("ck_group_deals_deals_max_quantity_positive")),
        sa.CheckConstraint("redeem_days >= 1", name=op.f("ck_group_deals_deals_redeem_days_positive")),
        sa.CheckConstraint("participants >= 0", name=op.f("ck_group_deals_deals_participants_not_negative")),
        sa.CheckConstraint("max_participants IS NULL OR participants <= max_participants", name=op.f("ck_group_deals_deals_within_maximum")),
        sa.ForeignKeyConstraint(["idea_id"], ["group_deals_ideas.id"], name=op.f("fk_group_deals_deals_idea_id_group_deals_ideas")),
        sa.ForeignKeyConstraint(["merchant_id"], ["merchants.id"], name=op.f("fk_group_deals_deals_merchant_id_merchants")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_group_deals_deals")),
        sa.UniqueConstraint("photo_filename", name=op.f("uq_group_deals_deals_photo_filename")),
    )
    op.create_index("ix_group_deals_deals_merchant_status", "group_deals_deals", ["merchant_id", "status"])
    op.create_index("ix_group_deals_deals_status_deadline", "group_deals_deals", ["status", "deadline"])
    op.create_table(
        "group_deals_tiers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("deal_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("participants", sa.Integer(), nullable=False),
        sa.Column("price", sa.Integer(), nullable=False),
        sa.CheckConstraint("participants >= 1", name=op.f("ck_group_deals_tiers_participants_positive")),
        sa.CheckConstraint("price > 0", name=op.f("ck_group_deals_tiers_price_positive")),
        sa.ForeignKeyConstraint(["deal_id"], ["group_deals_deals.id"], name=op.f("fk_group_deals_tiers_deal_id_group_deals_deals")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_group_deals_tiers")),
        sa.UniqueConstraint("deal_id", "position", name=op.f("uq_group_deals_tiers_deal_id_position")),
    )
    op.create_table(
        "group_deals_pledges",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("deal_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("membership_id", sa.Integer(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("joined_at", TZ, nullable=False),
        sa.Column("left_at", TZ, nullable=True),
        sa.CheckConstraint("quantity >= 1", name=op.f("ck_group_deals_pledges_quantity_positive")),
        sa.CheckConstraint("kind IN ('current', 'best')", name=op.f("ck_group_deals_pledges_kind_known")),
        sa.CheckConstraint("status IN ('active', 'left', 'won', 'released')", name=op.f("ck_group_deals_pledges_status_known")),
        sa.ForeignKeyConstraint(["deal_id"], ["group_deals_deals.id"], name=op.f("fk_group_deals_pledges_deal_id_group_deals_deals")),
        sa.ForeignKeyConstraint(["membership_id"], ["memberships.id"], name=op.f("fk_group_deals_pledges_membership_id_memberships")),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_group_deals_pledges_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_group_deals_pledges")),
        sa.UniqueConstraint("deal_id", "user_id", name=op.f("uq_group_deals_pledges_deal_id_user_id")),
    )
    op.create_index("ix_group_deals_pledges_user", "group_deals_pledges", ["user_id"])
    op.create_table(
        "group_deals_vouchers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("deal_id", sa.Integer(), nullable=False),
        sa.Column("pledge_id", sa.Integer(), nullable=False),
        sa.Column("merchant_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("nonce", sa.String(length=32), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("regular_price", sa.Integer(), nullable=False),
        sa.Column("price", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("issued_at", TZ, nullable=False),
        sa.Column("expires_at", TZ, nullable=False),
        sa.Column("redeemed_at", TZ, nullable=True),
        sa.Column("redeemed_purchase_id", sa.Integer(), nullable=True),
        sa.CheckConstraint("status IN ('issued', 'redeemed', 'expired')", name=op.f("ck_group_deals_vouchers_status_known")),
        sa.CheckConstraint("quantity >= 1", name=op.f("ck_group_deals_vouchers_quantity_positive")),
        sa.CheckConstraint("price > 0 AND price < regular_price", name=op.f("ck_group_deals_vouchers_price_below_regular")),
        sa.ForeignKeyConstraint(["deal_id"], ["group_deals_deals.id"], name=op.f("fk_group_deals_vouchers_deal_id_group_deals_deals")),
        sa.ForeignKeyConstraint(["merchant_id"], ["merchants.id"], name=op.f("fk_group_deals_vouchers_merchant_id_merchants")),
        sa.ForeignKeyConstraint(["pledge_id"], ["group_deals_pledges.id"], name=op.f("fk_group_deals_vouchers_pledge_id_group_deals_pledges")),
        sa.ForeignKeyConstraint(["redeemed_purchase_id"], ["purchases.id"], name=op.f("fk_group_deals_vouchers_redeemed_purchase_id_purchases")),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_group_deals_vouchers_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_group_deals_vouchers")),
        sa.UniqueConstraint("code_hash", name=op.f("uq_group_deals_vouchers_code_hash")),
        sa.UniqueConstraint("pledge_id", name=op.f("uq_group_deals_vouchers_pledge_id")),
    )
    op.create_index("ix_group_deals_vouchers_user_merchant", "group_deals_vouchers", ["user_id", "merchant_id"])
    op.create_index(op.f("ix_group_deals_vouchers_redeemed_purchase_id"), "group_deals_vouchers", ["redeemed_purchase_id"])
    op.create_table(
        "group_deals_votes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("idea_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.ForeignKeyConstraint(["idea_id"], ["group_deals_ideas.id"], name=op.f("fk_group_deals_votes_idea_id_group_deals_ideas")),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_group_deals_votes_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_group_deals_votes")),
        sa.UniqueConstraint("idea_id", "user_id", name=op.f("uq_group_deals_votes_idea_id_user_id")),
    )


def downgrade():
    op.drop_table("group_deals_votes")
    op.drop_index(op.f("ix_group_deals_vouchers_redeemed_purchase_id"), table_name="group_deals_vouchers")
    op.drop_index("ix_group_deals_vouchers_user_merchant", table_name="group_deals_vouchers")
    op.drop_table("group_deals_vouchers")
    op.drop_index("ix_group_deals_pledges_user", table_name="group_deals_pledges")
    op.drop_table("group_deals_pledges")
    op.drop_table("group_deals_tiers")
    op.drop_index("ix_group_deals_deals_status_deadline", table_name="group_deals_deals")
    op.drop_index("ix_group_deals_deals_merchant_status", table_name="group_deals_deals")
    op.drop_table("group_deals_deals")
    op.drop_index("ix_group_deals_ideas_merchant_votes", table_name="group_deals_ideas")
    op.drop_table("group_deals_ideas")
