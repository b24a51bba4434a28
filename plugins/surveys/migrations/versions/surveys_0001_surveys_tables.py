"""surveys: surveys, questions, responses, answers, invitations, ratings, complaints.

The plugin's own Alembic branch, labelled "surveys".

Revision ID: surveys_0001
Revises:
Create Date: 2026-11-23 15:08:54.930342

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = 'surveys_0001'
down_revision = None
branch_labels = ('surveys',)
depends_on = "core_0001"  # merchants, users, memberships and purchases must exist first


def upgrade():
    op.create_table('surveys_surveys',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('merchant_id', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=120), nullable=False),
    sa.Column('intro', sa.Text(), nullable=False),
    sa.Column('template', sa.String(length=30), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('reward_points', sa.Integer(), nullable=False),
    sa.Column('audience', sa.String(length=10), nullable=False),
    sa.Column('audience_days', sa.Integer(), nullable=True),
    sa.Column('audience_status', sa.String(length=60), nullable=False),
    sa.Column('starts_on', sa.Date(), nullable=True),
    sa.Column('ends_on', sa.Date(), nullable=True),
    sa.Column('quota', sa.Integer(), nullable=True),
    sa.Column('completed_count', sa.Integer(), nullable=False),
    sa.Column('public', sa.Boolean(), nullable=False),
    sa.Column('token', sa.String(length=40), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('quota IS NULL OR completed_count <= quota', name=op.f('ck_surveys_surveys_quota_respected')),
    sa.CheckConstraint('reward_points >= 0', name=op.f('ck_surveys_surveys_reward_not_negative')),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=op.f('fk_surveys_surveys_merchant_id_merchants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_surveys_surveys')),
    sa.UniqueConstraint('token', name=op.f('uq_surveys_surveys_token'))
    )
    with op.batch_alter_table('surveys_surveys', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_surveys_surveys_merchant_id'), ['merchant_id'], unique=False)

    op.create_table('surveys_questions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('survey_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('text', sa.String(length=300), nullable=False),
    sa.Column('required', sa.Boolean(), nullable=False),
    sa.Column('choices', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['survey_id'], ['surveys_surveys.id'], name=op.f('fk_surveys_questions_survey_id_surveys_surveys')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_surveys_questions'))
    )
    with op.batch_alter_table('surveys_questions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_surveys_questions_survey_id'), ['survey_id'], unique=False)

    op.create_table('surveys_responses',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('survey_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('reward_points', sa.Integer(), nullable=False),
    sa.Column('reward_paid_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('answers_deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['survey_id'], ['surveys_surveys.id'], name=op.f('fk_surveys_responses_survey_id_surveys_surveys')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_surveys_responses_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_surveys_responses')),
    sa.UniqueConstraint('survey_id', 'user_id', name=op.f('uq_surveys_responses_survey_id_user_id'))
    )
    with op.batch_alter_table('surveys_responses', schema=None) as batch_op:
        batch_op.create_index('ix_surveys_responses_user', ['user_id'], unique=False)

    op.create_table('surveys_answers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('response_id', sa.Integer(), nullable=False),
    sa.Column('question_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=True),
    sa.Column('text', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['question_id'], ['surveys_questions.id'], name=op.f('fk_surveys_answers_question_id_surveys_questions')),
    sa.ForeignKeyConstraint(['response_id'], ['surveys_responses.id'], name=op.f('fk_surveys_answers_response_id_surveys_responses')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_surveys_answers')),
    sa.UniqueConstraint('response_id', 'question_id', name=op.f('uq_surveys_answers_response_id_question_id'))
    )
    with op.batch_alter_table('surveys_answers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_surveys_answers_question_id'), ['question_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_surveys_answers_response_id'), ['response_id'], unique=False)

    op.create_table('surveys_invitations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('survey_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('purchase_id', sa.Integer(), nullable=True),
    sa.Column('emailed', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['purchase_id'], ['purchases.id'], name=op.f('fk_surveys_invitations_purchase_id_purchases')),
    sa.ForeignKeyConstraint(['survey_id'], ['surveys_surveys.id'], name=op.f('fk_surveys_invitations_survey_id_surveys_surveys')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_surveys_invitations_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_surveys_invitations')),
    sa.UniqueConstraint('survey_id', 'user_id', name=op.f('uq_surveys_invitations_survey_id_user_id'))
    )
    with op.batch_alter_table('surveys_invitations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_surveys_invitations_user_id'), ['user_id'], unique=False)

    op.create_table('surveys_ratings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('merchant_id', sa.Integer(), nullable=False),
    sa.Column('purchase_id', sa.Integer(), nullable=False),
    sa.Column('membership_id', sa.Integer(), nullable=False),
    sa.Column('cashier_id', sa.Integer(), nullable=True),
    sa.Column('score', sa.Integer(), nullable=False),
    sa.Column('comment', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('score BETWEEN 1 AND 5', name=op.f('ck_surveys_ratings_score_range')),
    sa.ForeignKeyConstraint(['cashier_id'], ['users.id'], name=op.f('fk_surveys_ratings_cashier_id_users')),
    sa.ForeignKeyConstraint(['membership_id'], ['memberships.id'], name=op.f('fk_surveys_ratings_membership_id_memberships')),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=op.f('fk_surveys_ratings_merchant_id_merchants')),
    sa.ForeignKeyConstraint(['purchase_id'], ['purchases.id'], name=op.f('fk_surveys_ratings_purchase_id_purchases')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_surveys_ratings')),
    sa.UniqueConstraint('purchase_id', name=op.f('uq_surveys_ratings_purchase_id'))
    )
    with op.batch_alter_table('surveys_ratings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_surveys_ratings_membership_id'), ['membership_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_surveys_ratings_merchant_id'), ['merchant_id'], unique=False)

    op.create_table('surveys_complaints',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('merchant_id', sa.Integer(), nullable=False),
    sa.Column('rating_id', sa.Integer(), nullable=False),
    sa.Column('membership_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('first_answer_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('bonus_points', sa.Integer(), nullable=False),
    sa.Column('bonus_paid_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['membership_id'], ['memberships.id'], name=op.f('fk_surveys_complaints_membership_id_memberships')),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=op.f('fk_surveys_complaints_merchant_id_merchants')),
    sa.ForeignKeyConstraint(['rating_id'], ['surveys_ratings.id'], name=op.f('fk_surveys_complaints_rating_id_surveys_ratings')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_surveys_complaints')),
    sa.UniqueConstraint('rating_id', name=op.f('uq_surveys_complaints_rating_id'))
    )
    with op.batch_alter_table('surveys_complaints', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_surveys_complaints_membership_id'), ['membership_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_surveys_complaints_merchant_id'), ['merchant_id'], unique=False)

    op.create_table('surveys_complaint_messages',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('complaint_id', sa.Integer(), nullable=False),
    sa.Column('from_merchant', sa.Boolean(), nullable=False),
    sa.Column('author_id', sa.Integer(), nullable=True),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['author_id'], ['users.id'], name=op.f('fk_surveys_complaint_messages_author_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['complaint_id'], ['surveys_complaints.id'], name=op.f('fk_surveys_complaint_messages_complaint_id_surveys_complaints')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_surveys_complaint_messages'))
    )
    with op.batch_alter_table('surveys_complaint_messages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_surveys_complaint_messages_complaint_id'), ['complaint_id'], unique=False)



def downgrade():
    with op.batch_alter_table('surveys_complaint_messages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_surveys_complaint_messages_complaint_id'))

    op.drop_table('surveys_complaint_messages')
    with op.batch_alter_table('surveys_complaints', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_surveys_complaints_merchant_id'))
        batch_op.drop_index(batch_op.f('ix_surveys_complaints_membership_id'))

    op.drop_table('surveys_complaints')
    with op.batch_alter_table('surveys_ratings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_surveys_ratings_merchant_id'))
        batch_op.drop_index(batch_op.f('ix_surveys_ratings_membership_id'))

    op.drop_table('surveys_ratings')
    with op.batch_alter_table('surveys_invitations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_surveys_invitations_user_id'))

    op.drop_table('surveys_invitations')
    with op.batch_alter_table('surveys_answers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_surveys_answers_response_id'))
        batch_op.drop_index(batch_op.f('ix_surveys_answers_question_id'))

    op.drop_table('surveys_answers')
    with op.batch_alter_table('surveys_responses', schema=None) as batch_op:
        batch_op.drop_index('ix_surveys_responses_user')

    op.drop_table('surveys_responses')
    with op.batch_alter_table('surveys_questions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_surveys_questions_survey_id'))

    op.drop_table('surveys_questions')
    with op.batch_alter_table('surveys_surveys', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_surveys_surveys_merchant_id'))

    op.drop_table('surveys_surveys')
