"""reconciliation runs, breaks and break cases (issue 16)

Revision ID: 0028_reconciliation
Revises: 0027_trade_symbols
Create Date: 2026-12-07 00:00:00

A run per (MT5 server, day); the MT5 balance deals and processors' settlement rows it read
(its snapshot: the day can be matched again exactly as it was); the breaks it found. The ledger
side is read from the postings themselves. Break cases (assign, comment, resolve) are not here
yet (docs/reconciliation.md).
"""

import sqlalchemy as sa
from alembic import op

revision = "0028_reconciliation"
down_revision = "0027_trade_symbols"
branch_labels = None
depends_on = None

STAMP = sa.DateTime(timezone=True)


def _run_id(table: str) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(
        "run_id",
        sa.Uuid(),
        sa.ForeignKey(
            "reconciliation_runs.id",
            name=f"fk_{table}_run_id_reconciliation_runs",
            ondelete="CASCADE",
        ),
        nullable=False,
    )


def upgrade() -> None:
    op.create_table(
        "reconciliation_runs",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("server", sa.Text(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("period_start", STAMP, nullable=False),
        sa.Column("period_end", STAMP, nullable=False),
        sa.Column("window_seconds", sa.Integer(), nullable=False),
        sa.Column("match_window_seconds", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("matched", sa.BigInteger(), nullable=True),
        sa.Column("breaks", sa.Integer(), nullable=True),
        sa.Column("created_at", STAMP, server_default=sa.text("now()"), nullable=False),
        sa.Column("finished_at", STAMP, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_reconciliation_runs"),
    )
    op.create_index("ix_reconciliation_runs_server_day", "reconciliation_runs", ["server", "day"])
    op.create_table(
        "reconciliation_mt5_deals",
        _run_id("reconciliation_mt5_deals"),
        sa.Column("deal", sa.BigInteger(), nullable=False),
        sa.Column("login", sa.BigInteger(), nullable=False),
        sa.Column("time", STAMP, nullable=False),
        sa.Column("action", sa.Integer(), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "deal", name="pk_reconciliation_mt5_deals"),
    )
    op.create_table(
        "reconciliation_psp_rows",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        _run_id("reconciliation_psp_rows"),
        sa.Column("provider", sa.Text(), nullable=False),
        sa.Column("provider_ref", sa.Text(), nullable=False),
        sa.Column("reference", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("gross_minor", sa.BigInteger(), nullable=False),
        sa.Column("fee_minor", sa.BigInteger(), nullable=False),
        sa.Column("net_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_reconciliation_psp_rows"),
    )
    op.create_index("ix_reconciliation_psp_rows_run_id", "reconciliation_psp_rows", ["run_id"])
    op.create_table(
        "reconciliation_breaks",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        _run_id("reconciliation_breaks"),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("reference", sa.Text(), nullable=True),
        sa.Column("deal", sa.BigInteger(), nullable=True),
        sa.Column("login", sa.BigInteger(), nullable=True),
        sa.Column("provider", sa.Text(), nullable=True),
        sa.Column("found_in", sa.Text(), nullable=False),
        sa.Column("missing_from", sa.Text(), nullable=False),
        sa.Column("expected_minor", sa.BigInteger(), nullable=True),
        sa.Column("actual_minor", sa.BigInteger(), nullable=True),
        sa.Column("expected_currency", sa.String(3), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_reconciliation_breaks"),
    )
    op.create_index("ix_reconciliation_breaks_run_id", "reconciliation_breaks", ["run_id"])
    op.create_index("ix_reconciliation_breaks_key", "reconciliation_breaks", ["key"])
    role = op.get_context().config.attributes.get("app_role", "brokerflow_app")
    # A run's snapshot is replaced whole when a back-filled day is fetched again; breaks are
    # rows of the run that found them (cases, later, will point at them).
    op.execute(f'GRANT SELECT, INSERT, UPDATE ON reconciliation_runs TO "{role}"')
    op.execute(
        "GRANT SELECT, INSERT, DELETE ON reconciliation_mt5_deals, reconciliation_psp_rows,"
        f' reconciliation_breaks TO "{role}"'
    )
    op.execute(
        "GRANT USAGE ON SEQUENCE reconciliation_psp_rows_id_seq, reconciliation_breaks_id_seq"
        f' TO "{role}"'
    )


def downgrade() -> None:
    op.drop_table("reconciliation_breaks")
    op.drop_table("reconciliation_psp_rows")
    op.drop_table("reconciliation_mt5_deals")
    op.drop_table("reconciliation_runs")
