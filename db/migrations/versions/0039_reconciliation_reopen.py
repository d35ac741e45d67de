"""Reconciliation cases: adjusting entries as proposals of their own (rejected ones kept), and
closed cases reopened (issue 16)

Revision ID: 0039_reconciliation_reopen
Revises: 0038_reconciliation_balances
Create Date: 2026-12-08 00:00:00

* `reconciliation_case_proposals`: every adjusting entry proposed on a case, numbered per case,
  with what became of it: `proposed` (waiting for a second finance officer; at most one per
  case), `approved` (posted, with its journal key), `rejected` (by a finance officer, with the
  reason; withdrawn when by its proposer), `replaced` (by a later proposal before anyone
  decided) or `lapsed` (the case closed before anyone decided). A decided proposal is final: a
  trigger refuses any change to it, and any change to what a waiting one proposes. Four-eyes
  as before: an approved proposal's approver is not its proposer.
  The case's one-proposal columns (`adj_*`) move there (as proposal 1) and are dropped.
* `reconciliation_cases.reopened_at`, `reopened_by`, `reopen_reason`: the last reopening of a
  closed case (its earlier closings stay in its audit rows); `resolved_by` now also names the
  approver of the entry that resolved a case (filled in for cases resolved so).

Downgrade puts each case's last proposal that was not rejected or replaced back in the `adj_*`
columns; rejected and replaced proposals are lost (their audit rows stay).
"""

import sqlalchemy as sa
from alembic import op

revision = "0039_reconciliation_reopen"
down_revision = "0038_reconciliation_balances"
branch_labels = None
depends_on = None

STAMP = sa.DateTime(timezone=True)
FOUR_EYES_0033 = "ck_reconciliation_cases_ck_reconciliation_cases_four_eyes"
ADJ_COLUMNS = (
    ("adj_debit_account", sa.Text()),
    ("adj_credit_account", sa.Text()),
    ("adj_amount_minor", sa.BigInteger()),
    ("adj_currency", sa.String(3)),
    ("adj_reason", sa.Text()),
    ("adj_proposed_by", sa.Uuid()),
    ("adj_proposed_at", STAMP),
    ("adj_approved_by", sa.Uuid()),
    ("adj_entry_key", sa.Text()),
)


def upgrade() -> None:
    op.create_table(
        "reconciliation_case_proposals",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column(
            "case_id",
            sa.Uuid(),
            sa.ForeignKey(
                "reconciliation_cases.id",
                name="fk_reconciliation_case_proposals_case_id_reconciliation_cases",
            ),
            nullable=False,
        ),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("debit_account", sa.Text(), nullable=False),
        sa.Column("credit_account", sa.Text(), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("proposed_by", sa.Uuid(), nullable=False),
        sa.Column("proposed_at", STAMP, nullable=False),
        sa.Column("decided_by", sa.Uuid(), nullable=True),
        sa.Column("decided_at", STAMP, nullable=True),
        sa.Column("decision_note", sa.Text(), nullable=True),
        sa.Column("entry_key", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_reconciliation_case_proposals"),
        sa.UniqueConstraint("case_id", "number", name="uq_reconciliation_case_proposals_case_id"),
        sa.CheckConstraint(
            "status IN ('proposed', 'approved', 'rejected', 'replaced', 'lapsed')",
            name=op.f("ck_reconciliation_case_proposals_status"),
        ),
        sa.CheckConstraint(
            "status <> 'approved' OR (decided_by IS NOT NULL AND decided_by <> proposed_by)",
            name=op.f("ck_reconciliation_case_proposals_four_eyes"),
        ),
        sa.CheckConstraint(
            "(status = 'approved') = (entry_key IS NOT NULL)",
            name=op.f("ck_reconciliation_case_proposals_entry_key"),
        ),
    )
    op.create_index(
        "uq_reconciliation_case_proposals_waiting",
        "reconciliation_case_proposals",
        ["case_id"],
        unique=True,
        postgresql_where=sa.text("status = 'proposed'"),
    )
    op.execute(
        """
        CREATE FUNCTION reconciliation_proposal_is_final() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF OLD.status <> 'proposed' THEN
                RAISE EXCEPTION 'proposal % of case % is % already: it is final',
                    OLD.number, OLD.case_id, OLD.status USING ERRCODE = 'check_violation';
            END IF;
            IF (NEW.case_id, NEW.number, NEW.debit_account, NEW.credit_account,
                NEW.amount_minor, NEW.currency, NEW.reason, NEW.proposed_by, NEW.proposed_at)
               IS DISTINCT FROM
               (OLD.case_id, OLD.number, OLD.debit_account, OLD.credit_account,
                OLD.amount_minor, OLD.currency, OLD.reason, OLD.proposed_by, OLD.proposed_at)
            THEN
                RAISE EXCEPTION 'what proposal % of case % proposes cannot change',
                    OLD.number, OLD.case_id USING ERRCODE = 'check_violation';
            END IF;
            RETURN NEW;
        END $$;
        CREATE TRIGGER reconciliation_proposal_final BEFORE UPDATE
            ON reconciliation_case_proposals
            FOR EACH ROW EXECUTE FUNCTION reconciliation_proposal_is_final();
        """
    )
    # The case's one proposal becomes its proposal 1: approved (posted), still waiting, or
    # lapsed (the case was auto-closed while it waited).
    op.execute(
        """
        INSERT INTO reconciliation_case_proposals
            (case_id, number, status, debit_account, credit_account, amount_minor, currency,
             reason, proposed_by, proposed_at, decided_by, decided_at, decision_note, entry_key)
        SELECT id, 1,
               CASE WHEN adj_approved_by IS NOT NULL THEN 'approved'
                    WHEN status = 'proposed' THEN 'proposed'
                    ELSE 'lapsed' END,
               adj_debit_account, adj_credit_account, adj_amount_minor, adj_currency,
               coalesce(adj_reason, ''), adj_proposed_by, adj_proposed_at,
               adj_approved_by,
               CASE WHEN adj_approved_by IS NOT NULL OR status NOT IN ('open', 'proposed')
                    THEN closed_at END,
               CASE WHEN adj_approved_by IS NULL AND status NOT IN ('open', 'proposed')
                    THEN 'the case was closed before anyone approved it' END,
               adj_entry_key
        FROM reconciliation_cases
        WHERE adj_proposed_by IS NOT NULL
        """
    )
    op.execute(
        "UPDATE reconciliation_cases SET resolved_by = adj_approved_by"
        " WHERE adj_approved_by IS NOT NULL AND resolved_by IS NULL"
    )
    # Named twice over by the naming convention when 0033 made it.
    op.drop_constraint(op.f(FOUR_EYES_0033), "reconciliation_cases", type_="check")
    for name, _ in ADJ_COLUMNS:
        op.drop_column("reconciliation_cases", name)
    op.add_column("reconciliation_cases", sa.Column("reopened_at", STAMP, nullable=True))
    op.add_column("reconciliation_cases", sa.Column("reopened_by", sa.Uuid(), nullable=True))
    op.add_column("reconciliation_cases", sa.Column("reopen_reason", sa.Text(), nullable=True))
    config = op.get_context().config
    role = config.attributes.get("app_role", "brokerflow_app") if config else "brokerflow_app"
    # Proposals are never deleted: a decision changes a waiting one's status, once.
    op.execute(f'GRANT SELECT, INSERT, UPDATE ON reconciliation_case_proposals TO "{role}"')
    op.execute(f'GRANT USAGE ON SEQUENCE reconciliation_case_proposals_id_seq TO "{role}"')


def downgrade() -> None:
    op.drop_column("reconciliation_cases", "reopen_reason")
    op.drop_column("reconciliation_cases", "reopened_by")
    op.drop_column("reconciliation_cases", "reopened_at")
    for name, kind in ADJ_COLUMNS:
        op.add_column("reconciliation_cases", sa.Column(name, kind, nullable=True))
    op.execute(
        """
        UPDATE reconciliation_cases AS c SET
            adj_debit_account = p.debit_account, adj_credit_account = p.credit_account,
            adj_amount_minor = p.amount_minor, adj_currency = p.currency,
            adj_reason = p.reason, adj_proposed_by = p.proposed_by,
            adj_proposed_at = p.proposed_at,
            adj_approved_by = CASE WHEN p.status = 'approved' THEN p.decided_by END,
            adj_entry_key = p.entry_key
        FROM (
            SELECT DISTINCT ON (case_id) * FROM reconciliation_case_proposals
            WHERE status IN ('proposed', 'approved', 'lapsed')
            ORDER BY case_id, number DESC
        ) AS p
        WHERE p.case_id = c.id
        """
    )
    op.create_check_constraint(
        op.f(FOUR_EYES_0033),
        "reconciliation_cases",
        "adj_approved_by IS NULL OR adj_approved_by <> adj_proposed_by",
    )
    op.drop_table("reconciliation_case_proposals")
    op.execute("DROP FUNCTION reconciliation_proposal_is_final()")
