"""cross_marketing: offers, partnerships, certificates, events, per-customer counters.

The plugin's own Alembic branch, labelled "cross_marketing".

Revision ID: cross_marketing_0001
Revises:
Create Date: 2026-11-24 10:00:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "cross_marketing_0001"
down_revision = None
branch_labels = ("cross_marketing",)
depends_on = "core_0001"  # merchants, users and purchases must exist first

TABLES = (
    "cross_marketing_events",
    "cross_marketing_certificates",
    "cross_marketing_holder_counts",
    "cross_marketing_partnerships",
    "cross_marketing_offers",
)


def upgrade():
    op.create_table('cross_marketing_offers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('issuer_id', sa.Integer(), nullable=False),
    sa.Column('face_value', sa.Integer(), nullable=False),
    sa.Column('min_purchase', sa.Integer(), nullable=False),
    sa.Column('validity_days', sa.Integer(), nullable=False),
    sa.Column('total_cap', sa.Integer(), nullable=True),
    sa.Column('per_customer_cap', sa.Integer(), nullable=True),
    sa.Column('fee', sa.Integer(), nullable=False),
    sa.Column('message', sa.String(length=200), nullable=False),
    sa.Column('remainder_policy', sa.String(length=10), nullable=False),
    sa.Column('issued_count', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("remainder_policy IN ('lost', 'kept')", name=op.f('ck_cross_marketing_offers_remainder_known')),
    sa.CheckConstraint('face_value > 0', name=op.f('ck_cross_marketing_offers_face_value_positive')),
    sa.CheckConstraint('fee >= 0', name=op.f('ck_cross_marketing_offers_fee_not_negative')),
    sa.CheckConstraint('issued_count >= 0', name=op.f('ck_cross_marketing_offers_issued_not_negative')),
    sa.CheckConstraint('min_purchase >= 0', name=op.f('ck_cross_marketing_offers_min_purchase_not_negative')),
    sa.CheckConstraint('total_cap IS NULL OR issued_count <= total_cap', name=op.f('ck_cross_marketing_offers_within_total_cap')),
    sa.CheckConstraint('validity_days > 0', name=op.f('ck_cross_marketing_offers_validity_positive')),
    sa.ForeignKeyConstraint(['issuer_id'], ['merchants.id'], name=op.f('fk_cross_marketing_offers_issuer_id_merchants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_cross_marketing_offers'))
    )
    with op.batch_alter_table('cross_marketing_offers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_cross_marketing_offers_issuer_id'), ['issuer_id'], unique=False)

    op.create_table('cross_marketing_holder_counts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('offer_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('issued', sa.Integer(), nullable=False),
    sa.CheckConstraint('issued >= 0', name=op.f('ck_cross_marketing_holder_counts_issued_not_negative')),
    sa.ForeignKeyConstraint(['offer_id'], ['cross_marketing_offers.id'], name=op.f('fk_cross_marketing_holder_counts_offer_id_cross_marketing_offers')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_cross_marketing_holder_counts_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_cross_marketing_holder_counts')),
    sa.UniqueConstraint('offer_id', 'user_id', name=op.f('uq_cross_marketing_holder_counts_offer_id_user_id'))
    )
    op.create_table('cross_marketing_partnerships',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('offer_id', sa.Integer(), nullable=False),
    sa.Column('distributor_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('min_purchase', sa.Integer(), nullable=False),
    sa.Column('max_per_day', sa.Integer(), nullable=True),
    sa.Column('counted_day', sa.Date(), nullable=True),
    sa.Column('issued_on_day', sa.Integer(), nullable=False),
    sa.Column('changed_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("status IN ('invited', 'active', 'paused', 'ended', 'declined')", name=op.f('ck_cross_marketing_partnerships_status_known')),
    sa.CheckConstraint('max_per_day IS NULL OR issued_on_day <= max_per_day', name=op.f('ck_cross_marketing_partnerships_within_day_cap')),
    sa.CheckConstraint('min_purchase >= 0', name=op.f('ck_cross_marketing_partnerships_min_purchase_not_negative')),
    sa.ForeignKeyConstraint(['changed_by_id'], ['merchants.id'], name=op.f('fk_cross_marketing_partnerships_changed_by_id_merchants')),
    sa.ForeignKeyConstraint(['distributor_id'], ['merchants.id'], name=op.f('fk_cross_marketing_partnerships_distributor_id_merchants')),
    sa.ForeignKeyConstraint(['offer_id'], ['cross_marketing_offers.id'], name=op.f('fk_cross_marketing_partnerships_offer_id_cross_marketing_offers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_cross_marketing_partnerships')),
    sa.UniqueConstraint('offer_id', 'distributor_id', name=op.f('uq_cross_marketing_partnerships_offer_id_distributor_id'))
    )
    with op.batch_alter_table('cross_marketing_partnerships', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_cross_marketing_partnerships_distributor_id'), ['distributor_id'], unique=False)

    op.create_table('cross_marketing_certificates',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('offer_id', sa.Integer(), nullable=False),
    sa.Column('partnership_id', sa.Integer(), nullable=False),
    sa.Column('issuer_id', sa.Integer(), nullable=False),
    sa.Column('distributor_id', sa.Integer(), nullable=False),
    sa.Column('holder_id', sa.Integer(), nullable=False),
    sa.Column('code_hash', sa.String(length=64), nullable=False),
    sa.Column('code_last4', sa.String(length=4), nullable=False),
    sa.Column('code_sealed', sa.String(length=120), nullable=False),
    sa.Column('face_value', sa.Integer(), nullable=False),
    sa.Column('balance', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('issued_purchase_id', sa.Integer(), nullable=False),
    sa.Column('redeemed_purchase_id', sa.Integer(), nullable=True),
    sa.Column('issued_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('redeemed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('gift_token_hash', sa.String(length=64), nullable=True),
    sa.Column('reminded_week_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('reminded_day_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status IN ('issued', 'attached', 'redeemed', 'voided', 'expired')", name=op.f('ck_cross_marketing_certificates_status_known')),
    sa.CheckConstraint('balance >= 0 AND balance <= face_value', name=op.f('ck_cross_marketing_certificates_balance_range')),
    sa.ForeignKeyConstraint(['distributor_id'], ['merchants.id'], name=op.f('fk_cross_marketing_certificates_distributor_id_merchants')),
    sa.ForeignKeyConstraint(['holder_id'], ['users.id'], name=op.f('fk_cross_marketing_certificates_holder_id_users')),
    sa.ForeignKeyConstraint(['issued_purchase_id'], ['purchases.id'], name=op.f('fk_cross_marketing_certificates_issued_purchase_id_purchases')),
    sa.ForeignKeyConstraint(['issuer_id'], ['merchants.id'], name=op.f('fk_cross_marketing_certificates_issuer_id_merchants')),
    sa.ForeignKeyConstraint(['offer_id'], ['cross_marketing_offers.id'], name=op.f('fk_cross_marketing_certificates_offer_id_cross_marketing_offers')),
    sa.ForeignKeyConstraint(['partnership_id'], ['cross_marketing_partnerships.id'], name=op.f('fk_cross_marketing_certificates_partnership_id_cross_marketing_partnerships')),
    sa.ForeignKeyConstraint(['redeemed_purchase_id'], ['purchases.id'], name=op.f('fk_cross_marketing_certificates_redeemed_purchase_id_purchases')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_cross_marketing_certificates')),
    sa.UniqueConstraint('code_hash', name=op.f('uq_cross_marketing_certificates_code_hash')),
    sa.UniqueConstraint('gift_token_hash', name=op.f('uq_cross_marketing_certificates_gift_token_hash'))
    )
    with op.batch_alter_table('cross_marketing_certificates', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_cross_marketing_certificates_holder_id'), ['holder_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_cross_marketing_certificates_issued_purchase_id'), ['issued_purchase_id'], unique=False)
        batch_op.create_index('ix_cross_marketing_certificates_issuer_status', ['issuer_id', 'status'], unique=False)
        batch_op.create_index(batch_op.f('ix_cross_marketing_certificates_offer_id'), ['offer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_cross_marketing_certificates_redeemed_purchase_id'), ['redeemed_purchase_id'], unique=False)
        batch_op.create_index('ix_cross_marketing_certificates_status_expires', ['status', 'expires_at'], unique=False)

    op.create_table('cross_marketing_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('certificate_id', sa.Integer(), nullable=False),
    sa.Column('partnership_id', sa.Integer(), nullable=False),
    sa.Column('issuer_id', sa.Integer(), nullable=False),
    sa.Column('distributor_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=12), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.Column('face_value', sa.Integer(), nullable=False),
    sa.Column('value_used', sa.Integer(), nullable=False),
    sa.Column('fee', sa.Integer(), nullable=False),
    sa.Column('purchase_amount', sa.Integer(), nullable=False),
    sa.Column('new_customer', sa.Boolean(), nullable=False),
    sa.Column('purchase_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("kind IN ('issued', 'redeemed', 'restored', 'voided', 'expired', 'transferred')", name=op.f('ck_cross_marketing_events_kind_known')),
    sa.ForeignKeyConstraint(['certificate_id'], ['cross_marketing_certificates.id'], name=op.f('fk_cross_marketing_events_certificate_id_cross_marketing_certificates')),
    sa.ForeignKeyConstraint(['distributor_id'], ['merchants.id'], name=op.f('fk_cross_marketing_events_distributor_id_merchants')),
    sa.ForeignKeyConstraint(['issuer_id'], ['merchants.id'], name=op.f('fk_cross_marketing_events_issuer_id_merchants')),
    sa.ForeignKeyConstraint(['partnership_id'], ['cross_marketing_partnerships.id'], name=op.f('fk_cross_marketing_events_partnership_id_cross_marketing_partnerships')),
    sa.ForeignKeyConstraint(['purchase_id'], ['purchases.id'], name=op.f('fk_cross_marketing_events_purchase_id_purchases')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_cross_marketing_events'))
    )
    with op.batch_alter_table('cross_marketing_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_cross_marketing_events_certificate_id'), ['certificate_id'], unique=False)
        batch_op.create_index('ix_cross_marketing_events_distributor_created', ['distributor_id', 'created_at'], unique=False)
        batch_op.create_index('ix_cross_marketing_events_issuer_created', ['issuer_id', 'created_at'], unique=False)
        batch_op.create_index('ix_cross_marketing_events_partnership_created', ['partnership_id', 'created_at'], unique=False)


def downgrade():
    # Dropping a table drops its indexes too, on SQLite and PostgreSQL.
    for table in TABLES:
        op.drop_table(table)
