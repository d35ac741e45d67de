"""ledger: accounts, immutable journal entries, postings balanced per currency at commit

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 23:55:00

The balance check is a deferred constraint trigger: postings of one entry are inserted one by one,
and only at COMMIT must they sum to zero in every currency. Entries and postings cannot be
updated or deleted by anyone; corrections are reversing entries.
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ledger_accounts",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("code", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_accounts")),
        sa.UniqueConstraint("code", name=op.f("uq_ledger_accounts_code")),
    )
    op.create_table(
        "journal_entries",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=False),
        sa.Column("reverses_id", sa.Uuid(), nullable=True),
        sa.Column("booked_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["reverses_id"], ["journal_entries.id"], name=op.f("fk_journal_entries_reverses_id_journal_entries")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_journal_entries")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_journal_entries_idempotency_key")),
        sa.UniqueConstraint("reverses_id", name=op.f("uq_journal_entries_reverses_id")),
    )
    op.create_index(op.f("ix_journal_entries_booked_at"), "journal_entries", ["booked_at"], unique=False)
    op.create_table(
        "postings",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("entry_id", sa.Uuid(), nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["ledger_accounts.id"], name=op.f("fk_postings_account_id_ledger_accounts")),
        sa.ForeignKeyConstraint(["entry_id"], ["journal_entries.id"], name=op.f("fk_postings_entry_id_journal_entries")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_postings")),
        sa.CheckConstraint("amount_minor <> 0", name=op.f("ck_postings_not_zero")),
    )
    op.create_index(op.f("ix_postings_account_id"), "postings", ["account_id"], unique=False)
    op.create_index(op.f("ix_postings_entry_id"), "postings", ["entry_id"], unique=False)
    op.execute(
        """
        CREATE FUNCTION ledger_is_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION '% is immutable (% refused): book a reversing entry', TG_TABLE_NAME, TG_OP
                USING ERRCODE = 'insufficient_privilege';
        END $$;
        CREATE TRIGGER journal_entries_immutable BEFORE UPDATE OR DELETE ON journal_entries
            FOR EACH ROW EXECUTE FUNCTION ledger_is_immutable();
        CREATE TRIGGER postings_immutable BEFORE UPDATE OR DELETE ON postings
            FOR EACH ROW EXECUTE FUNCTION ledger_is_immutable();
        CREATE TRIGGER ledger_no_truncate BEFORE TRUNCATE ON postings
            FOR EACH STATEMENT EXECUTE FUNCTION ledger_is_immutable();

        CREATE FUNCTION entry_must_balance() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
            off record;
        BEGIN
            SELECT currency, sum(amount_minor) AS total INTO off
                FROM postings WHERE entry_id = NEW.entry_id
                GROUP BY currency HAVING sum(amount_minor) <> 0 LIMIT 1;
            IF FOUND THEN
                RAISE EXCEPTION 'journal entry % does not balance in % (off by % minor units)',
                    NEW.entry_id, off.currency, off.total USING ERRCODE = 'check_violation';
            END IF;
            IF (SELECT count(*) FROM postings WHERE entry_id = NEW.entry_id) < 2 THEN
                RAISE EXCEPTION 'journal entry % needs at least two postings', NEW.entry_id
                    USING ERRCODE = 'check_violation';
            END IF;
            RETURN NULL;
        END $$;
        CREATE CONSTRAINT TRIGGER postings_balance AFTER INSERT ON postings
            DEFERRABLE INITIALLY DEFERRED
            FOR EACH ROW EXECUTE FUNCTION entry_must_balance();
        """
    )
    role = op.get_context().config.attributes.get("app_role", "brokerflow_app")
    op.execute(
        f"""
        GRANT SELECT, INSERT ON ledger_accounts, journal_entries, postings TO "{role}";
        """
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER postings_balance ON postings")
    op.execute("DROP TRIGGER ledger_no_truncate ON postings")
    op.execute("DROP TRIGGER postings_immutable ON postings")
    op.execute("DROP TRIGGER journal_entries_immutable ON journal_entries")
    op.execute("DROP FUNCTION entry_must_balance()")
    op.execute("DROP FUNCTION ledger_is_immutable()")
    op.drop_table("postings")
    op.drop_table("journal_entries")
    op.drop_table("ledger_accounts")
