"""kyc: the enhanced due diligence recorded to approve a confirmed PEP

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 21:40:00

A case whose PEP hit an officer confirmed is approved only with enhanced due diligence (source of
wealth, source of funds, the public function, the purpose of the relationship) and a senior
officer's approval (docs/compliance-console.md). The fields are kept on the case; each recording
is audited with before and after.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "kyc_cases",
        sa.Column("enhanced_due_diligence", postgresql.JSONB(), nullable=True),
    )


def downgrade() -> None:
    op.drop_column("kyc_cases", "enhanced_due_diligence")
