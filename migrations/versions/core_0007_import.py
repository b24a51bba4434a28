"""core: customer imports, each network's country, phone numbers in E.164

Networks get a country (the default region of phone numbers written without a country code),
derived from their time zone or currency (Asia/Almaty or KZT -> KZ). Stored phone numbers, kept
until now as "+" and the digits typed, are parsed again with that country and stored in E.164;
a number that still does not parse, or would become another account's number, is left as it was.

Revision ID: core_0007_import
Revises: core_0006_points_lifecycle
Create Date: 2026-12-07 03:50:00

"""
import sqlalchemy as sa
from alembic import op

revision = 'core_0007_import'
down_revision = 'core_0006_points_lifecycle'
branch_labels = None
depends_on = None


def _default_country(currency, timezone):
    from babel.core import get_global
    import phonenumbers

    territory = get_global("zone_territories").get(timezone or "")
    if territory in phonenumbers.SUPPORTED_REGIONS:
        return territory
    users = [
        region for region, currencies in get_global("territory_currencies").items()
        if region in phonenumbers.SUPPORTED_REGIONS
        and any(entry[0] == (currency or "").upper() and entry[2] is None and entry[3] for entry in currencies)
    ]
    return users[0] if len(users) == 1 else ""


def _e164(stored, region):
    import phonenumbers

    for text, default in ((stored, None), (stored.lstrip("+"), region)):
        if default is None and not text.startswith("+"):
            continue
        try:
            number = phonenumbers.parse(text, default)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return None


def _migrate_data():
    bind = op.get_bind()
    networks = sa.table(
        "networks", sa.column("id", sa.Integer), sa.column("currency", sa.String),
        sa.column("timezone", sa.String), sa.column("country", sa.String),
    )
    countries = {}
    for network_id, currency, timezone in bind.execute(
        sa.select(networks.c.id, networks.c.currency, networks.c.timezone).order_by(networks.c.id)
    ):
        countries[network_id] = _default_country(currency, timezone)
        bind.execute(
            networks.update().where(networks.c.id == network_id).values(country=countries[network_id])
        )
    first_country = next((country for country in countries.values() if country), None)
    # Each person's region: the network of their first card, else the first network's.
    region_of = dict(bind.execute(sa.text(
        "SELECT m.user_id, n.country FROM memberships m JOIN merchants s ON s.id = m.merchant_id "
        "JOIN networks n ON n.id = s.network_id ORDER BY m.id DESC"
    )).all())
    users = sa.table("users", sa.column("id", sa.Integer), sa.column("phone", sa.String))
    rows = bind.execute(sa.select(users.c.id, users.c.phone).where(users.c.phone.is_not(None))).all()
    taken = {phone for _, phone in rows}
    for user_id, phone in rows:
        new = _e164(phone, region_of.get(user_id) or first_country)
        if new is None or new == phone or new in taken:
            continue
        bind.execute(users.update().where(users.c.id == user_id).values(phone=new))
        taken.discard(phone)
        taken.add(new)


def upgrade():
    with op.batch_alter_table("networks") as batch_op:
        batch_op.add_column(sa.Column("country", sa.String(length=2), nullable=False, server_default=""))
    with op.batch_alter_table("users") as batch_op:
        batch_op.add_column(sa.Column("imported_at", sa.DateTime(timezone=True), nullable=True))

    op.create_table('customer_imports',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('merchant_id', sa.Integer(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('filename', sa.String(length=255), nullable=False),
    sa.Column('encoding', sa.String(length=20), nullable=False),
    sa.Column('delimiter', sa.String(length=1), nullable=False),
    sa.Column('content', sa.Text(), nullable=False),
    sa.Column('header', sa.JSON(), nullable=False),
    sa.Column('mapping', sa.JSON(), nullable=False),
    sa.Column('check_summary', sa.JSON(), nullable=True),
    sa.Column('total_rows', sa.Integer(), nullable=False),
    sa.Column('next_row', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('created_count', sa.Integer(), nullable=False),
    sa.Column('linked_count', sa.Integer(), nullable=False),
    sa.Column('skipped_count', sa.Integer(), nullable=False),
    sa.Column('failed_count', sa.Integer(), nullable=False),
    sa.Column('points_imported', sa.Integer(), nullable=False),
    sa.Column('failure', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status IN ('uploaded', 'checking', 'checked', 'queued', 'running', 'done', 'failed')", name=op.f('ck_customer_imports_status_known')),
    sa.CheckConstraint('next_row >= 0 AND next_row <= total_rows', name=op.f('ck_customer_imports_progress_in_range')),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_customer_imports_created_by_id_users')),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=op.f('fk_customer_imports_merchant_id_merchants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_customer_imports'))
    )
    with op.batch_alter_table('customer_imports', schema=None) as batch_op:
        batch_op.create_index('ix_customer_imports_merchant_created', ['merchant_id', 'created_at'], unique=False)

    op.create_table('customer_import_rows',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('merchant_id', sa.Integer(), nullable=False),
    sa.Column('import_id', sa.Integer(), nullable=False),
    sa.Column('row_key', sa.String(length=64), nullable=False),
    sa.Column('row_number', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('membership_id', sa.Integer(), nullable=False),
    sa.Column('birthday', sa.String(length=10), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['import_id'], ['customer_imports.id'], name=op.f('fk_customer_import_rows_import_id_customer_imports')),
    sa.ForeignKeyConstraint(['membership_id'], ['memberships.id'], name=op.f('fk_customer_import_rows_membership_id_memberships')),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=op.f('fk_customer_import_rows_merchant_id_merchants')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_customer_import_rows_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_customer_import_rows')),
    sa.UniqueConstraint('merchant_id', 'row_key', name=op.f('uq_customer_import_rows_merchant_id_row_key'))
    )
    with op.batch_alter_table('customer_import_rows', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_customer_import_rows_import_id'), ['import_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_customer_import_rows_user_id'), ['user_id'], unique=False)

    _migrate_data()


def downgrade():
    with op.batch_alter_table('customer_import_rows', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_customer_import_rows_user_id'))
        batch_op.drop_index(batch_op.f('ix_customer_import_rows_import_id'))
    op.drop_table('customer_import_rows')
    with op.batch_alter_table('customer_imports', schema=None) as batch_op:
        batch_op.drop_index('ix_customer_imports_merchant_created')
    op.drop_table('customer_imports')
    with op.batch_alter_table("users") as batch_op:
        batch_op.drop_column("imported_at")
    with op.batch_alter_table("networks") as batch_op:
        batch_op.drop_column("country")
