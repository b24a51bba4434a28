"""news: the news_posts table (the plugin's own Alembic branch, labelled "news").

Revision ID: news_0001
Revises:
Create Date: 2026-11-23 14:10:37.830818

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "news_0001"
down_revision = None
branch_labels = ("news",)
depends_on = "core_0001"  # merchants and users must exist first


def upgrade():
    op.create_table(
        "news_posts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("merchant_id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=120), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("link", sa.String(length=500), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("length(body) <= 1000", name=op.f("ck_news_posts_body_length")),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["users.id"], name=op.f("fk_news_posts_created_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["merchant_id"], ["merchants.id"], name=op.f("fk_news_posts_merchant_id_merchants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_news_posts")),
    )
    with op.batch_alter_table("news_posts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_news_posts_merchant_published", ["merchant_id", "published_at"], unique=False
        )


def downgrade():
    with op.batch_alter_table("news_posts", schema=None) as batch_op:
        batch_op.drop_index("ix_news_posts_merchant_published")
    op.drop_table("news_posts")
