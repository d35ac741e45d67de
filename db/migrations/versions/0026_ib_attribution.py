"""referral codes, dated per-IB plan terms, symbol paths and spread on deals (issue 14)

Revision ID: 0026_ib_attribution
Revises: 0025_commission_trace
Create Date: 2026-12-07 00:00:00

Referral codes need no new column (`introducing_brokers.referral_code`, unique, since 0001).
What changes is that a referred client's live MT5 logins are attributed to its IB when they
are opened (`activities/ib_referral.py`). This revision gives the live logins opened before
that change the same attribution: every live login of a client with `referred_by_ib_id` that
has no attribution period at all gets an open period, `source = 'referral'`, from the time of
this migration (never earlier: deals already made stay unpaid, nothing paid moves), with its
`ib_attribution.assigned` audit row by the system. A login with any period (a staff
assignment) is left as it is.
"""

import sqlalchemy as sa
from alembic import op

revision = "0026_ib_attribution"
down_revision = "0025_commission_trace"
branch_labels = None
depends_on = None

BACKFILL = """
WITH referred AS (
    SELECT a.server, a.login, c.referred_by_ib_id AS ib_id, c.id AS client_id,
           extract(epoch FROM now())::bigint AS effective_from
    FROM mt5_accounts a
    JOIN clients c ON c.id = a.client_id
    WHERE a.kind = 'live'
      AND c.referred_by_ib_id IS NOT NULL
      AND NOT EXISTS (
          SELECT 1 FROM ib_attributions x WHERE x.server = a.server AND x.login = a.login
      )
), attributed AS (
    INSERT INTO ib_attributions (server, login, ib_id, effective_from, source)
    SELECT server, login, ib_id, effective_from, 'referral' FROM referred
    RETURNING server, login, ib_id, effective_from
)
INSERT INTO audit_log
    (actor_kind, actor_id, actor_roles, on_behalf_of, action, entity_type, entity_id, after,
     reason)
SELECT 'system', 'brokerflow', '{}', r.client_id::text, 'ib_attribution.assigned', 'mt5_login',
       t.server || ':' || t.login,
       jsonb_build_object('ib_id', t.ib_id::text, 'effective_from', t.effective_from,
                          'source', 'referral'),
       'referred at sign-up (live login opened before referral attribution; migration 0026)'
FROM attributed t JOIN referred r ON r.server = t.server AND r.login = t.login
"""


def upgrade() -> None:
    op.execute(sa.text(BACKFILL))


def downgrade() -> None:
    # The periods added are valid attributions under the previous schema too, and periods the
    # accrual has used must not disappear: nothing to undo.
    pass
