"""concierge: topics, FAQ entries, questions and their messages.

The plugin's own Alembic branch, labelled "concierge".

Revision ID: concierge_0001
Revises:
Create Date: 2026-12-07 06:50:00

"""
import sqlalchemy as sa
from alembic import op

revision = "concierge_0001"
down_revision = None
branch_labels = ("concierge",)
depends_on = "core_0001"  # merchants and users must exist first

TZ = sa.DateTime(timezone=True)


def upgrade():
    op.create_table(
        "concierge_topics",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("merchant_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("assignee_id", sa.Integer(), nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.ForeignKeyConstraint(["assignee_id"], ["users.id"], name=op.f("fk_concierge_topics_assignee_id_users")),
        sa.ForeignKeyConstraint(["merchant_id"], ["merchants.id"], name=op.f("fk_concierge_topics_merchant_id_merchants")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_concierge_topics")),
        sa.UniqueConstraint("merchant_id", "name", name=op.f("uq_concierge_topics_merchant_id_name")),
    )
    op.create_table(
        "concierge_questions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("merchant_id", sa.Integer(), nullable=False),
        sa.Column("topic_id", sa.Integer(), nullable=True),
        sa.Column("assignee_id", sa.Integer(), nullable=True),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("guest_email", sa.String(length=255), nullable=True),
        sa.Column("locale", sa.String(length=10), nullable=False),
        sa.Column("notify_email", sa.Boolean(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("token", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("unread", sa.Boolean(), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("first_answer_at", TZ, nullable=True),
        sa.Column("last_message_at", TZ, nullable=False),
        sa.CheckConstraint("status IN ('open', 'answered', 'closed')", name=op.f("ck_concierge_questions_status_known")),
        sa.CheckConstraint("user_id IS NOT NULL OR guest_email IS NOT NULL", name=op.f("ck_concierge_questions_has_asker")),
        sa.ForeignKeyConstraint(["assignee_id"], ["users.id"], name=op.f("fk_concierge_questions_assignee_id_users")),
        sa.ForeignKeyConstraint(["merchant_id"], ["merchants.id"], name=op.f("fk_concierge_questions_merchant_id_merchants")),
        sa.ForeignKeyConstraint(["topic_id"], ["concierge_topics.id"], name=op.f("fk_concierge_questions_topic_id_concierge_topics"), ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_concierge_questions_user_id_users"), ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_concierge_questions")),
        sa.UniqueConstraint("merchant_id", "token", name=op.f("uq_concierge_questions_merchant_id_token")),
    )
    op.create_index("ix_concierge_questions_merchant_status", "concierge_questions", ["merchant_id", "status"])
    op.create_index("ix_concierge_questions_assignee", "concierge_questions", ["assignee_id", "status"])
    op.create_index("ix_concierge_questions_user", "concierge_questions", ["user_id"])
    op.create_table(
        "concierge_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("question_id", sa.Integer(), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=True),
        sa.Column("from_staff", sa.Boolean(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("token", sa.String(length=40), nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.ForeignKeyConstraint(["author_id"], ["users.id"], name=op.f("fk_concierge_messages_author_id_users"), ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["question_id"], ["concierge_questions.id"], name=op.f("fk_concierge_messages_question_id_concierge_questions"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_concierge_messages")),
        sa.UniqueConstraint("question_id", "token", name=op.f("uq_concierge_messages_question_id_token")),
    )
    op.create_index("ix_concierge_messages_question", "concierge_messages", ["question_id"])
    op.create_table(
        "concierge_faq",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("merchant_id", sa.Integer(), nullable=False),
        sa.Column("question", sa.String(length=300), nullable=False),
        sa.Column("answer", sa.Text(), nullable=False),
        sa.Column("language", sa.String(length=10), nullable=False),
        sa.Column("picks", sa.Integer(), nullable=False),
        sa.Column("source_message_id", sa.Integer(), nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.CheckConstraint("picks >= 0", name=op.f("ck_concierge_faq_picks_not_negative")),
        sa.ForeignKeyConstraint(["merchant_id"], ["merchants.id"], name=op.f("fk_concierge_faq_merchant_id_merchants")),
        sa.ForeignKeyConstraint(["source_message_id"], ["concierge_messages.id"], name=op.f("fk_concierge_faq_source_message_id_concierge_messages"), ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_concierge_faq")),
    )
    op.create_index("ix_concierge_faq_merchant", "concierge_faq", ["merchant_id"])


def downgrade():
    op.drop_index("ix_concierge_faq_merchant", table_name="concierge_faq")
    op.drop_table("concierge_faq")
    op.drop_index("ix_concierge_messages_question", table_name="concierge_messages")
    op.drop_table("concierge_messages")
    op.drop_index("ix_concierge_questions_user", table_name="concierge_questions")
    op.drop_index("ix_concierge_questions_assignee", table_name="concierge_questions")
    op.drop_index("ix_concierge_questions_merchant_status", table_name="concierge_questions")
    op.drop_table("concierge_questions")
    op.drop_table("concierge_topics")
