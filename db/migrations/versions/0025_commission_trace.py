"""the IB commission ledger's trace, stored for speed (issue 14)

A row's trace repeats, for every deal priced alike, all but the deal, the beneficiary and
`volume_why`. Rows the accrual writes now store it by reference: `trace_ref` is the key of a
template in `ib_commission_traces` (the trace's other keys, JSONB, stored once), then the
direct IB (its length in 3 digits, then the id) and `volume_why`; `trace` (the whole JSONB) is
kept for adjustments and for the rows written before. `IbCommission.trace` reads either as the
same JSONB (`db.models.ib.COMMISSION_TRACE`). The payout index holds only rows in a payout.
`ib_id`'s foreign key (a look-up per row written) becomes a trigger on `introducing_brokers`
refusing to delete (or renumber) an IB with commission rows.

Revision ID: 0025_commission_trace
Revises: 0024_password_reset
Create Date: 2026-12-07 00:00:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0025_commission_trace"
down_revision = "0024_password_reset"
branch_labels = None
depends_on = None

# The whole trace of a row stored by reference, as `db.models.ib.COMMISSION_TRACE` builds it.
_REBUILT = (
    "(SELECT jsonb_build_object('row', t.body || jsonb_build_object("
    "'deal', c.deal, 'login', c.login, 'time', c.deal_time, 'symbol', c.symbol,"
    " 'ib', c.ib_id::text, 'level', c.level,"
    " 'direct_ib', substr(c.trace_ref, 36, substr(c.trace_ref, 33, 3)::int),"
    " 'volume_why', substr(c.trace_ref, 36 + substr(c.trace_ref, 33, 3)::int)),"
    " 'adjustment', NULL)"
    " FROM ib_commission_traces t WHERE t.key = substr(c.trace_ref, 1, 32)::uuid)"
)


_FK = "fk_ib_commissions_ib_id_introducing_brokers"
# What the foreign key of `ib_commissions.ib_id` kept, without a look-up per row written: an IB
# with commission rows is not deleted, nor its id changed.
_KEEP_IB = """
CREATE FUNCTION ib_commissions_keep_ib() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (TG_OP = 'DELETE' OR NEW.id <> OLD.id)
       AND EXISTS (SELECT 1 FROM ib_commissions WHERE ib_id = OLD.id) THEN
        RAISE EXCEPTION 'introducing broker % has commission rows', OLD.id
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER ib_commissions_keep_ib BEFORE DELETE OR UPDATE OF id ON introducing_brokers
    FOR EACH ROW EXECUTE FUNCTION ib_commissions_keep_ib();
"""


def upgrade() -> None:
    op.create_table(
        "ib_commission_traces",
        sa.Column("key", sa.Uuid(), nullable=False),
        sa.Column("body", postgresql.JSONB(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_ib_commission_traces"),
    )
    op.add_column("ib_commissions", sa.Column("trace_ref", sa.Text(), nullable=True))
    op.alter_column("ib_commissions", "trace", nullable=True)
    op.create_check_constraint(
        op.f("ck_ib_commissions_one_trace"),
        "ib_commissions",
        "(trace IS NULL) <> (trace_ref IS NULL)",
    )
    # Rows in a payout only: the accrual writes rows without one, whose insert then does not
    # touch this index (the payout's rows and their release are found by `payout_id = …`).
    op.drop_index("ix_ib_commissions_payout", "ib_commissions")
    op.create_index(
        "ix_ib_commissions_payout",
        "ib_commissions",
        ["payout_id"],
        postgresql_where=sa.text("payout_id IS NOT NULL"),
    )
    # The foreign key checked each row written (a look-up and a lock of its IB's row): kept by
    # a trigger on the IBs' side instead.
    op.drop_constraint(_FK, "ib_commissions", type_="foreignkey")
    op.execute(_KEEP_IB)
    role = op.get_context().config.attributes.get("app_role", "brokerflow_app")
    # Templates are content-addressed: added, never changed.
    op.execute(f'GRANT SELECT, INSERT ON ib_commission_traces TO "{role}"')


def downgrade() -> None:
    op.execute(
        f"UPDATE ib_commissions c SET trace = {_REBUILT}, trace_ref = NULL"  # noqa: S608
        " WHERE c.trace_ref IS NOT NULL"
    )
    op.execute("DROP TRIGGER ib_commissions_keep_ib ON introducing_brokers")
    op.execute("DROP FUNCTION ib_commissions_keep_ib()")
    op.create_foreign_key(_FK, "ib_commissions", "introducing_brokers", ["ib_id"], ["id"])
    op.drop_index("ix_ib_commissions_payout", "ib_commissions")
    op.create_index("ix_ib_commissions_payout", "ib_commissions", ["payout_id"])
    op.drop_constraint("ck_ib_commissions_one_trace", "ib_commissions", type_="check")
    op.alter_column("ib_commissions", "trace", nullable=False)
    op.drop_column("ib_commissions", "trace_ref")
    op.drop_table("ib_commission_traces")
