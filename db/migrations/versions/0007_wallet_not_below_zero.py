"""ledger: the database refuses a client wallet below zero

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 19:00:00

Balances are not stored: an account's balance is the sum of its postings, and postings are
insert-only. So the guard is a deferred constraint trigger on `postings`, like `postings_balance`:
at COMMIT, every debit of a `wallet` account (a positive posting: the wallet is a liability,
its credit balance is what the client may use) checks that the wallet's balance in that
currency is still at most zero (debit positive), and raises `check_violation` with the
constraint name `wallet_not_below_zero` otherwise. Whoever books the posting, the application's
balance check is no longer the only thing between two withdrawals and one wallet.

Before summing, the trigger takes the same transaction-scoped advisory lock on the account that
`db.ledger.locked_balance` takes (re-entrant for the transaction that already holds it): a
concurrent transaction debiting the same wallet waits until this one has ended and, under READ
COMMITTED (each statement of the function takes a new snapshot), then sees its postings. Under
REPEATABLE READ or SERIALIZABLE the snapshot would be older; BrokerFlow uses READ COMMITTED.

Wallets already below zero when this runs are left as they are; any further debit of them is
refused, credits are not.
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION wallet_must_not_go_below_zero() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
            account record;
            total numeric;
        BEGIN
            SELECT code, kind INTO account FROM ledger_accounts WHERE id = NEW.account_id;
            IF account.kind IS DISTINCT FROM 'wallet' THEN
                RETURN NULL;
            END IF;
            PERFORM pg_advisory_xact_lock(NEW.account_id);
            SELECT coalesce(sum(amount_minor), 0) INTO total FROM postings
                WHERE account_id = NEW.account_id AND currency = NEW.currency;
            IF total > 0 THEN
                RAISE EXCEPTION 'insufficient funds: wallet % would go % % minor units below zero',
                    account.code, total, NEW.currency
                    USING ERRCODE = 'check_violation',
                          CONSTRAINT = 'wallet_not_below_zero',
                          TABLE = 'postings';
            END IF;
            RETURN NULL;
        END $$;
        CREATE CONSTRAINT TRIGGER wallet_not_below_zero AFTER INSERT ON postings
            DEFERRABLE INITIALLY DEFERRED
            FOR EACH ROW WHEN (NEW.amount_minor > 0)
            EXECUTE FUNCTION wallet_must_not_go_below_zero();
        """
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER wallet_not_below_zero ON postings")
    op.execute("DROP FUNCTION wallet_must_not_go_below_zero()")
