"""letters: templates, sent-letter log, bonus codes, postal addresses (the plugin's own branch).

Revision ID: letters_0001
Revises:
Create Date: 2026-11-23 14:41:18.858445

"""

import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = "letters_0001"
down_revision = None
branch_labels = ("letters",)
depends_on = "core_0001"  # merchants, users, memberships and purchases must exist first


def upgrade():
    op.create_table(
        "letters_addresses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("recipient", sa.String(length=120), nullable=False),
        sa.Column("street", sa.String(length=200), nullable=False),
        sa.Column("city", sa.String(length=120), nullable=False),
        sa.Column("postcode", sa.String(length=20), nullable=False),
        sa.Column("country", sa.String(length=80), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_letters_addresses_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_letters_addresses")),
        sa.UniqueConstraint("user_id", name=op.f("uq_letters_addresses_user_id")),
    )
    op.create_table(
        "letters_templates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("merchant_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("bonus_pool", sa.String(length=60), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind IN ('thanks', 'reassurance', 'winback')",
            name=op.f("ck_letters_templates_kind_known"),
        ),
        sa.CheckConstraint("length(body) <= 5000", name=op.f("ck_letters_templates_body_length")),
        sa.ForeignKeyConstraint(
            ["merchant_id"],
            ["merchants.id"],
            name=op.f("fk_letters_templates_merchant_id_merchants"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_letters_templates")),
        sa.UniqueConstraint(
            "merchant_id", "kind", name=op.f("uq_letters_templates_merchant_id_kind")
        ),
    )
    op.create_table(
        "letters_sent",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("merchant_id", sa.Integer(), nullable=False),
        sa.Column("membership_id", sa.Integer(), nullable=False),
        sa.Column("purchase_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("channel", sa.String(length=10), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("dedupe_key", sa.String(length=120), nullable=False),
        sa.Column("context", sa.JSON(), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("printed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "channel IN ('email', 'post')", name=op.f("ck_letters_sent_channel_known")
        ),
        sa.CheckConstraint(
            "kind IN ('thanks', 'reassurance', 'winback')", name=op.f("ck_letters_sent_kind_known")
        ),
        sa.CheckConstraint(
            "status IN ('scheduled', 'sent', 'cancelled', 'pending', 'printed')",
            name=op.f("ck_letters_sent_status_known"),
        ),
        sa.ForeignKeyConstraint(
            ["membership_id"],
            ["memberships.id"],
            name=op.f("fk_letters_sent_membership_id_memberships"),
        ),
        sa.ForeignKeyConstraint(
            ["merchant_id"], ["merchants.id"], name=op.f("fk_letters_sent_merchant_id_merchants")
        ),
        sa.ForeignKeyConstraint(
            ["purchase_id"], ["purchases.id"], name=op.f("fk_letters_sent_purchase_id_purchases")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_letters_sent")),
        sa.UniqueConstraint(
            "merchant_id", "dedupe_key", name=op.f("uq_letters_sent_merchant_id_dedupe_key")
        ),
    )
    with op.batch_alter_table("letters_sent", schema=None) as batch_op:
        batch_op.create_index("ix_letters_sent_membership", ["membership_id"], unique=False)
        batch_op.create_index(
            "ix_letters_sent_merchant_status_due", ["merchant_id", "status", "due_at"], unique=False
        )

    op.create_table(
        "letters_bonus_codes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("merchant_id", sa.Integer(), nullable=False),
        sa.Column("pool", sa.String(length=60), nullable=False),
        sa.Column("partner", sa.String(length=120), nullable=False),
        sa.Column("code", sa.String(length=80), nullable=False),
        sa.Column("letter_id", sa.Integer(), nullable=True),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["letter_id"],
            ["letters_sent.id"],
            name=op.f("fk_letters_bonus_codes_letter_id_letters_sent"),
        ),
        sa.ForeignKeyConstraint(
            ["merchant_id"],
            ["merchants.id"],
            name=op.f("fk_letters_bonus_codes_merchant_id_merchants"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_letters_bonus_codes")),
        sa.UniqueConstraint("letter_id", name=op.f("uq_letters_bonus_codes_letter_id")),
        sa.UniqueConstraint(
            "merchant_id", "pool", "code", name=op.f("uq_letters_bonus_codes_merchant_id_pool_code")
        ),
    )
    with op.batch_alter_table("letters_bonus_codes", schema=None) as batch_op:
        batch_op.create_index(
            "ix_letters_bonus_codes_free", ["merchant_id", "pool", "used_at"], unique=False
        )


def downgrade():
    with op.batch_alter_table("letters_bonus_codes", schema=None) as batch_op:
        batch_op.drop_index("ix_letters_bonus_codes_free")

    op.drop_table("letters_bonus_codes")
    with op.batch_alter_table("letters_sent", schema=None) as batch_op:
        batch_op.drop_index("ix_letters_sent_merchant_status_due")
        batch_op.drop_index("ix_letters_sent_membership")

    op.drop_table("letters_sent")
    op.drop_table("letters_templates")
    op.drop_table("letters_addresses")
