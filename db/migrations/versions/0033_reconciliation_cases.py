"""Reconciliation break cases, comments, adjusting entries and sign-off (issue 16)

Revision ID: 0033_reconciliation_cases
Revises: 0032_risk_desk
Create Date: 2026-12-07 00:00:00

A case follows a break's key on one MT5 server from run to run (at most one open case per
key): assigned, commented, resolved by an adjusting entry two different finance officers
agree on (propose, approve), or auto-closed when a timing break clears on a later run.
A run's sign-off by finance is one row per run.
"""

import sqlalchemy as sa
from alembic import op

revision = "0033_reconciliation_cases"
down_revision = "0032_risk_desk"
branch_labels = None
depends_on = None

STAMP = sa.DateTime(timezone=True)


def _run(column: str, table: str, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(
        column,
        sa.Uuid(),
        sa.ForeignKey("reconciliation_runs.id", name=f"fk_{table}_{column}_reconciliation_runs"),
        nullable=nullable,
    )


def upgrade() -> None:
    op.create_table(
        "reconciliation_cases",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", STAMP, server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", STAMP, server_default=sa.func.now(), nullable=False),
        sa.Column("server", sa.Text(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("reference", sa.Text(), nullable=True),
        sa.Column("login", sa.BigInteger(), nullable=True),
        sa.Column("deal", sa.BigInteger(), nullable=True),
        sa.Column("provider", sa.Text(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        _run("first_run_id", "reconciliation_cases"),
        _run("last_run_id", "reconciliation_cases"),
        sa.Column("first_day", sa.Date(), nullable=False),
        sa.Column("last_day", sa.Date(), nullable=False),
        sa.Column("alerted", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column(
            "assignee_id",
            sa.Uuid(),
            sa.ForeignKey("staff_users.id", name="fk_reconciliation_cases_assignee_id_staff_users"),
            nullable=True,
        ),
        sa.Column("closed_at", STAMP, nullable=True),
        sa.Column("resolution", sa.Text(), nullable=True),
        # The adjusting entry: proposed by one finance officer, approved (and posted) by another.
        sa.Column("adj_debit_account", sa.Text(), nullable=True),
        sa.Column("adj_credit_account", sa.Text(), nullable=True),
        sa.Column("adj_amount_minor", sa.BigInteger(), nullable=True),
        sa.Column("adj_currency", sa.String(3), nullable=True),
        sa.Column("adj_reason", sa.Text(), nullable=True),
        sa.Column("adj_proposed_by", sa.Uuid(), nullable=True),
        sa.Column("adj_proposed_at", STAMP, nullable=True),
        sa.Column("adj_approved_by", sa.Uuid(), nullable=True),
        sa.Column("adj_entry_key", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_reconciliation_cases"),
        sa.CheckConstraint(
            "status IN ('open', 'proposed', 'resolved', 'auto_closed')",
            name="ck_reconciliation_cases_status",
        ),
        sa.CheckConstraint(
            "adj_approved_by IS NULL OR adj_approved_by <> adj_proposed_by",
            name="ck_reconciliation_cases_four_eyes",
        ),
    )
    op.create_index(
        "uq_reconciliation_cases_open_key",
        "reconciliation_cases",
        ["server", "key"],
        unique=True,
        postgresql_where=sa.text("status IN ('open', 'proposed')"),
    )
    op.create_index("ix_reconciliation_cases_status", "reconciliation_cases", ["status"])
    op.create_index("ix_reconciliation_cases_last_run_id", "reconciliation_cases", ["last_run_id"])
    op.create_table(
        "reconciliation_case_comments",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column(
            "case_id",
            sa.Uuid(),
            sa.ForeignKey(
                "reconciliation_cases.id",
                name="fk_reconciliation_case_comments_case_id_reconciliation_cases",
            ),
            nullable=False,
        ),
        sa.Column("staff_id", sa.Uuid(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", STAMP, server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_reconciliation_case_comments"),
    )
    op.create_index(
        "ix_reconciliation_case_comments_case_id", "reconciliation_case_comments", ["case_id"]
    )
    op.create_table(
        "reconciliation_signoffs",
        _run("run_id", "reconciliation_signoffs"),
        sa.Column("staff_id", sa.Uuid(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("signed_at", STAMP, server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("run_id", name="pk_reconciliation_signoffs"),
    )
    role = op.get_context().config.attributes.get("app_role", "brokerflow_app")
    op.execute(f'GRANT SELECT, INSERT, UPDATE ON reconciliation_cases TO "{role}"')
    # Comments and sign-offs are never changed: a correction is another comment.
    op.execute(
        f'GRANT SELECT, INSERT ON reconciliation_case_comments, reconciliation_signoffs TO "{role}"'
    )
    op.execute(f'GRANT USAGE ON SEQUENCE reconciliation_case_comments_id_seq TO "{role}"')


def downgrade() -> None:
    op.drop_table("reconciliation_signoffs")
    op.drop_table("reconciliation_case_comments")
    op.drop_table("reconciliation_cases")
