"""Reconciliation: account balances, payments waiting on a processor, stored reports,
cases resolved without an entry (issue 16)

Revision ID: 0038_reconciliation_balances
Revises: 0036_dealer_revenue
Create Date: 2026-12-07 00:00:00

* `reconciliation_balances`: a run's snapshot of its server's accounts, each MT5 balance as of
  the period's end and what trading had changed by then (docs/reconciliation.md, "Balances").
* `reconciliation_waiting`: a run's snapshot of the payments BrokerFlow waits on a processor
  for (lost webhooks, payouts stuck at the processor).
* `reconciliation_runs`: why the balances were not checked (`balances_note`), and the keys of
  the report stored at the end of the run (`report_pdf_key`, `report_csv_key`).
* `reconciliation_cases.resolved_by`: who resolved a case without an adjusting entry.
"""

import sqlalchemy as sa
from alembic import op

revision = "0038_reconciliation_balances"
down_revision = "0036_dealer_revenue"
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
        "reconciliation_balances",
        _run_id("reconciliation_balances"),
        sa.Column("login", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("mt5_minor", sa.BigInteger(), nullable=False),
        sa.Column("trading_minor", sa.BigInteger(), nullable=False),
        sa.Column("read_at", STAMP, nullable=False),
        sa.PrimaryKeyConstraint("run_id", "login", name="pk_reconciliation_balances"),
    )
    op.create_table(
        "reconciliation_waiting",
        _run_id("reconciliation_waiting"),
        sa.Column("reference", sa.Text(), nullable=False),
        sa.Column("provider", sa.Text(), nullable=False),
        sa.Column("direction", sa.String(16), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("since", STAMP, nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "reference", name="pk_reconciliation_waiting"),
    )
    op.add_column("reconciliation_runs", sa.Column("balances_note", sa.Text(), nullable=True))
    op.add_column("reconciliation_runs", sa.Column("report_pdf_key", sa.Text(), nullable=True))
    op.add_column("reconciliation_runs", sa.Column("report_csv_key", sa.Text(), nullable=True))
    op.add_column("reconciliation_cases", sa.Column("resolved_by", sa.Uuid(), nullable=True))
    role = op.get_context().config.attributes.get("app_role", "brokerflow_app")
    # Snapshots are replaced whole when a step is retried.
    op.execute(
        "GRANT SELECT, INSERT, DELETE ON reconciliation_balances, reconciliation_waiting"
        f' TO "{role}"'
    )


def downgrade() -> None:
    op.drop_column("reconciliation_cases", "resolved_by")
    op.drop_column("reconciliation_runs", "report_csv_key")
    op.drop_column("reconciliation_runs", "report_pdf_key")
    op.drop_column("reconciliation_runs", "balances_note")
    op.drop_table("reconciliation_waiting")
    op.drop_table("reconciliation_balances")
