"""foundation

Revision ID: 0001
Revises: 
Create Date: 2026-11-24 22:23:51.005265

Also creates the app's own login role, which may read and write business tables but may only
INSERT into and SELECT from the audit log; a trigger refuses UPDATE/DELETE/TRUNCATE there for
every role, the owner included.
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('audit_log',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=True), nullable=False),
    sa.Column('occurred_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('actor_kind', sa.String(length=16), nullable=False),
    sa.Column('actor_id', sa.String(length=64), nullable=True),
    sa.Column('actor_roles', postgresql.ARRAY(sa.String(length=32)), nullable=False),
    sa.Column('on_behalf_of', sa.String(length=64), nullable=True),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('entity_type', sa.String(length=64), nullable=False),
    sa.Column('entity_id', sa.String(length=64), nullable=False),
    sa.Column('before', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('after', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('ip', sa.String(length=64), nullable=True),
    sa.Column('request_id', sa.String(length=64), nullable=True),
    sa.Column('trace_id', sa.String(length=32), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_log'))
    )
    op.create_index(op.f('ix_audit_log_action'), 'audit_log', ['action'], unique=False)
    op.create_index(op.f('ix_audit_log_actor_id'), 'audit_log', ['actor_id'], unique=False)
    op.create_index(op.f('ix_audit_log_entity_id'), 'audit_log', ['entity_id'], unique=False)
    op.create_index(op.f('ix_audit_log_occurred_at'), 'audit_log', ['occurred_at'], unique=False)
    op.create_table('introducing_brokers',
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('password_hash', sa.Text(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('referral_code', sa.String(length=32), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_introducing_brokers')),
    sa.UniqueConstraint('email', name=op.f('uq_introducing_brokers_email')),
    sa.UniqueConstraint('referral_code', name=op.f('uq_introducing_brokers_referral_code'))
    )
    op.create_table('mt5_login_counters',
    sa.Column('server', sa.String(length=64), nullable=False),
    sa.Column('next_login', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('server', name=op.f('pk_mt5_login_counters'))
    )
    op.create_table('staff_users',
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('full_name', sa.String(length=200), nullable=False),
    sa.Column('password_hash', sa.Text(), nullable=False),
    sa.Column('totp_secret_enc', sa.Text(), nullable=False),
    sa.Column('totp_last_step', sa.BigInteger(), nullable=True),
    sa.Column('roles', postgresql.ARRAY(sa.String(length=32)), nullable=False),
    sa.Column('ip_allowlist', postgresql.ARRAY(postgresql.CIDR()), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_staff_users')),
    sa.UniqueConstraint('email', name=op.f('uq_staff_users_email'))
    )
    op.create_table('clients',
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('password_hash', sa.Text(), nullable=False),
    sa.Column('full_name', sa.String(length=200), nullable=False),
    sa.Column('country', sa.String(length=2), nullable=False),
    sa.Column('date_of_birth', sa.Date(), nullable=False),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.Column('referred_by_ib_id', sa.Uuid(), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['referred_by_ib_id'], ['introducing_brokers.id'], name=op.f('fk_clients_referred_by_ib_id_introducing_brokers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_clients')),
    sa.UniqueConstraint('email', name=op.f('uq_clients_email'))
    )
    op.create_index(op.f('ix_clients_referred_by_ib_id'), 'clients', ['referred_by_ib_id'], unique=False)
    op.create_table('account_applications',
    sa.Column('client_id', sa.Uuid(), nullable=False),
    sa.Column('account_type', sa.String(length=32), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('workflow_id', sa.String(length=200), nullable=False),
    sa.Column('mt5_server', sa.String(length=64), nullable=False),
    sa.Column('mt5_login', sa.BigInteger(), nullable=True),
    sa.Column('mt5_password_main_enc', sa.Text(), nullable=True),
    sa.Column('mt5_password_investor_enc', sa.Text(), nullable=True),
    sa.Column('failure_reason', sa.Text(), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['client_id'], ['clients.id'], name=op.f('fk_account_applications_client_id_clients')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_account_applications')),
    sa.UniqueConstraint('mt5_server', 'mt5_login', name=op.f('uq_account_applications_mt5_server')),
    sa.UniqueConstraint('workflow_id', name=op.f('uq_account_applications_workflow_id'))
    )
    op.create_index(op.f('ix_account_applications_client_id'), 'account_applications', ['client_id'], unique=False)
    op.create_table('mt5_accounts',
    sa.Column('client_id', sa.Uuid(), nullable=False),
    sa.Column('application_id', sa.Uuid(), nullable=False),
    sa.Column('server', sa.String(length=64), nullable=False),
    sa.Column('login', sa.BigInteger(), nullable=False),
    sa.Column('group', sa.String(length=128), nullable=False),
    sa.Column('leverage', sa.Integer(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['application_id'], ['account_applications.id'], name=op.f('fk_mt5_accounts_application_id_account_applications')),
    sa.ForeignKeyConstraint(['client_id'], ['clients.id'], name=op.f('fk_mt5_accounts_client_id_clients')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_mt5_accounts')),
    sa.UniqueConstraint('application_id', name=op.f('uq_mt5_accounts_application_id')),
    sa.UniqueConstraint('server', 'login', name=op.f('uq_mt5_accounts_server'))
    )
    op.create_index(op.f('ix_mt5_accounts_client_id'), 'mt5_accounts', ['client_id'], unique=False)
    _protect_audit_log()
    _grant_app_role(op.get_context().config.attributes.get("app_role", "brokerflow_app"))


def _protect_audit_log() -> None:
    op.execute(
        """
        CREATE FUNCTION audit_log_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'audit_log is append-only (% refused)', TG_OP
                USING ERRCODE = 'insufficient_privilege';
        END $$;
        CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON audit_log
            FOR EACH ROW EXECUTE FUNCTION audit_log_is_append_only();
        CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
            FOR EACH STATEMENT EXECUTE FUNCTION audit_log_is_append_only();
        """
    )


def _grant_app_role(role: str) -> None:
    op.execute(
        f"""
        DO $$ BEGIN
            IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN
                CREATE ROLE "{role}" LOGIN;
            END IF;
        END $$;
        GRANT USAGE ON SCHEMA public TO "{role}";
        GRANT SELECT, INSERT, UPDATE, DELETE ON
            staff_users, clients, introducing_brokers, account_applications, mt5_accounts,
            mt5_login_counters
            TO "{role}";
        GRANT SELECT, INSERT ON audit_log TO "{role}";
        REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM "{role}";
        """
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER audit_log_no_update ON audit_log")
    op.execute("DROP TRIGGER audit_log_no_truncate ON audit_log")
    op.execute("DROP FUNCTION audit_log_is_append_only()")
    op.drop_index(op.f('ix_mt5_accounts_client_id'), table_name='mt5_accounts')
    op.drop_table('mt5_accounts')
    op.drop_index(op.f('ix_account_applications_client_id'), table_name='account_applications')
    op.drop_table('account_applications')
    op.drop_index(op.f('ix_clients_referred_by_ib_id'), table_name='clients')
    op.drop_table('clients')
    op.drop_table('staff_users')
    op.drop_table('mt5_login_counters')
    op.drop_table('introducing_brokers')
    op.drop_index(op.f('ix_audit_log_occurred_at'), table_name='audit_log')
    op.drop_index(op.f('ix_audit_log_entity_id'), table_name='audit_log')
    op.drop_index(op.f('ix_audit_log_actor_id'), table_name='audit_log')
    op.drop_index(op.f('ix_audit_log_action'), table_name='audit_log')
    op.drop_table('audit_log')
