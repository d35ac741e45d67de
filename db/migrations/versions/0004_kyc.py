"""kyc: questionnaire, documents, screening lists and hits, KYC cases and decisions, account changes

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 10:00:00

Clients gain their contact and address data, a verified-email time, a classification, a risk
level and the account type asked for; MT5 accounts gain a status and their rights mask.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

NOW = sa.text("now()")


def _record(table: str, *columns: sa.Column, constraints: tuple = ()) -> None:  # type: ignore[type-arg]
    op.create_table(
        table,
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        *columns,
        sa.PrimaryKeyConstraint("id", name=f"pk_{table}"),
        *constraints,
    )


def _fk(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], [f"{target}.id"], name=f"fk_{table}_{column}_{target}")


def upgrade() -> None:
    for name, type_ in (
        ("phone", sa.String(32)),
        ("nationality", sa.String(2)),
        ("address_line1", sa.String(200)),
        ("address_line2", sa.String(200)),
        ("city", sa.String(100)),
        ("postal_code", sa.String(16)),
        ("name_key", sa.String(200)),
        ("email_verified_at", sa.DateTime(timezone=True)),
        ("risk_level", sa.String(16)),
        ("risk_score", sa.Integer()),
    ):
        op.add_column("clients", sa.Column(name, type_, nullable=True))
    op.add_column("clients", sa.Column("category", sa.String(16), server_default="retail", nullable=False))
    op.add_column("clients", sa.Column("account_type", sa.String(32), server_default="standard", nullable=False))
    op.create_index("ix_clients_name_key", "clients", ["name_key"])
    op.add_column("mt5_accounts", sa.Column("status", sa.String(16), server_default="active", nullable=False))
    op.add_column("mt5_accounts", sa.Column("rights", sa.BigInteger(), nullable=True))

    _record(
        "questionnaire_responses",
        sa.Column("client_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.String(16), nullable=False),
        sa.Column("answers", postgresql.JSONB(), nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("max_score", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("leverage_cap", sa.Integer(), nullable=True),
        sa.Column("category", sa.String(16), nullable=False),
        sa.Column("requested_professional", sa.Boolean(), nullable=False),
        sa.Column("source_of_funds", sa.String(32), nullable=False),
        constraints=(_fk("questionnaire_responses", "client_id", "clients"),),
    )
    op.create_index("ix_questionnaire_responses_client_id", "questionnaire_responses", ["client_id"])

    _record(
        "client_documents",
        sa.Column("client_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("filename", sa.String(255), nullable=False),
        sa.Column("content_type", sa.String(64), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("pages", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("storage_key", sa.String(200), nullable=False),
        sa.Column("issued_on", sa.Date(), nullable=True),
        sa.Column("expires_on", sa.Date(), nullable=True),
        sa.Column("valid_until", sa.Date(), nullable=False),
        constraints=(
            _fk("client_documents", "client_id", "clients"),
            sa.UniqueConstraint("client_id", "sha256", name="uq_client_documents_client_id"),
            sa.UniqueConstraint("storage_key", name="uq_client_documents_storage_key"),
        ),
    )
    op.create_index("ix_client_documents_client_id", "client_documents", ["client_id"])
    op.create_index("ix_client_documents_valid_until", "client_documents", ["valid_until"])

    op.create_table(
        "screening_lists",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("party_count", sa.Integer(), nullable=False),
        sa.Column("loaded_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_screening_lists"),
        sa.UniqueConstraint("digest", name="uq_screening_lists_digest"),
    )
    op.create_index("ix_screening_lists_source", "screening_lists", ["source"])
    op.create_table(
        "screening_parties",
        sa.Column("list_id", sa.BigInteger(), nullable=False),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("primary_name", sa.Text(), nullable=False),
        sa.Column("data", postgresql.JSONB(), nullable=False),
        sa.ForeignKeyConstraint(
            ["list_id"], ["screening_lists.id"], name="fk_screening_parties_list_id_screening_lists",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("list_id", "key", name="pk_screening_parties"),
    )

    _record(
        "kyc_cases",
        sa.Column("client_id", sa.Uuid(), nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("workflow_id", sa.String(200), nullable=False),
        sa.Column("account_type", sa.String(32), nullable=False),
        sa.Column("mt5_server", sa.String(64), nullable=False),
        sa.Column("requires_four_eyes", sa.Boolean(), nullable=False),
        sa.Column("review_round", sa.Integer(), nullable=False),
        sa.Column("risk_score", sa.Integer(), nullable=True),
        sa.Column("risk_level", sa.String(16), nullable=True),
        sa.Column("risk_factors", postgresql.JSONB(), nullable=False),
        sa.Column("waiting_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("escalated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reminders_sent", sa.Integer(), nullable=False),
        sa.Column("info_needed", sa.Text(), nullable=True),
        sa.Column("client_note", sa.Text(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision_reason", sa.Text(), nullable=True),
        constraints=(
            _fk("kyc_cases", "client_id", "clients"),
            sa.UniqueConstraint("workflow_id", name="uq_kyc_cases_workflow_id"),
        ),
    )
    op.create_index("ix_kyc_cases_client_id", "kyc_cases", ["client_id"])
    op.create_index("ix_kyc_cases_status", "kyc_cases", ["status"])
    op.create_index("ix_kyc_cases_due_at", "kyc_cases", ["due_at"])
    op.create_index(
        "uq_kyc_cases_open_per_client", "kyc_cases", ["client_id"], unique=True,
        postgresql_where=sa.text("status NOT IN ('approved', 'rejected')"),
    )

    op.create_table(
        "kyc_decisions",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("review_round", sa.Integer(), nullable=False),
        sa.Column("officer_id", sa.Uuid(), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("info_needed", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["kyc_cases.id"], name="fk_kyc_decisions_case_id_kyc_cases"),
        sa.ForeignKeyConstraint(["officer_id"], ["staff_users.id"], name="fk_kyc_decisions_officer_id_staff_users"),
        sa.PrimaryKeyConstraint("id", name="pk_kyc_decisions"),
    )
    op.create_index("ix_kyc_decisions_case_id", "kyc_decisions", ["case_id"])
    op.create_index(
        "uq_kyc_decisions_one_approval_per_officer", "kyc_decisions",
        ["case_id", "review_round", "officer_id"], unique=True,
        postgresql_where=sa.text("action = 'approve'"),
    )

    _record(
        "screening_hits",
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("client_id", sa.Uuid(), nullable=False),
        sa.Column("list_id", sa.BigInteger(), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("party_key", sa.String(64), nullable=False),
        sa.Column("listed_name", sa.Text(), nullable=False),
        sa.Column("primary_name", sa.Text(), nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("name_score", sa.Integer(), nullable=False),
        sa.Column("is_pep", sa.Boolean(), nullable=False),
        sa.Column("factors", postgresql.JSONB(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        constraints=(
            _fk("screening_hits", "case_id", "kyc_cases"),
            _fk("screening_hits", "client_id", "clients"),
            sa.ForeignKeyConstraint(["list_id"], ["screening_lists.id"], name="fk_screening_hits_list_id_screening_lists"),
            sa.UniqueConstraint("case_id", "source", "party_key", name="uq_screening_hits_case_id"),
        ),
    )
    op.create_index("ix_screening_hits_case_id", "screening_hits", ["case_id"])
    op.create_index("ix_screening_hits_client_id", "screening_hits", ["client_id"])

    _record(
        "account_changes",
        sa.Column("mt5_account_id", sa.Uuid(), nullable=False),
        sa.Column("client_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("requested", postgresql.JSONB(), nullable=False),
        sa.Column("before", postgresql.JSONB(), nullable=True),
        sa.Column("requested_by_kind", sa.String(16), nullable=False),
        sa.Column("requested_by_id", sa.Uuid(), nullable=False),
        sa.Column("idempotency_key", sa.String(200), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("workflow_id", sa.String(200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("decided_by", sa.Uuid(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("failure_reason", sa.Text(), nullable=True),
        constraints=(
            _fk("account_changes", "mt5_account_id", "mt5_accounts"),
            _fk("account_changes", "client_id", "clients"),
            sa.ForeignKeyConstraint(["decided_by"], ["staff_users.id"], name="fk_account_changes_decided_by_staff_users"),
            sa.UniqueConstraint("mt5_account_id", "idempotency_key", name="uq_account_changes_mt5_account_id"),
            sa.UniqueConstraint("workflow_id", name="uq_account_changes_workflow_id"),
        ),
    )
    op.create_index("ix_account_changes_mt5_account_id", "account_changes", ["mt5_account_id"])
    op.create_index("ix_account_changes_client_id", "account_changes", ["client_id"])
    op.create_index("ix_account_changes_status", "account_changes", ["status"])

    role = op.get_context().config.attributes.get("app_role", "brokerflow_app")
    # Decisions are evidence: written once, never changed. Old list versions may be pruned.
    op.execute(
        f"""
        GRANT SELECT, INSERT, UPDATE ON questionnaire_responses, client_documents, kyc_cases,
            screening_hits, account_changes, screening_lists TO "{role}";
        GRANT SELECT, INSERT, DELETE ON screening_parties TO "{role}";
        GRANT DELETE ON screening_lists TO "{role}";
        GRANT SELECT, INSERT ON kyc_decisions TO "{role}";
        """
    )


def downgrade() -> None:
    for table in (
        "account_changes", "screening_hits", "kyc_decisions", "kyc_cases", "screening_parties",
        "screening_lists", "client_documents", "questionnaire_responses",
    ):
        op.drop_table(table)
    op.drop_column("mt5_accounts", "rights")
    op.drop_column("mt5_accounts", "status")
    op.drop_index("ix_clients_name_key", table_name="clients")
    for name in (
        "account_type", "category", "risk_score", "risk_level", "email_verified_at", "name_key",
        "postal_code", "city", "address_line2", "address_line1", "nationality", "phone",
    ):
        op.drop_column("clients", name)
