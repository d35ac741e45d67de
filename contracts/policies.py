"""Retry policies, named for what they protect."""

from __future__ import annotations

from datetime import timedelta

from temporalio.common import RetryPolicy

# MT5 writes: transient retcodes and lost answers are retried with back-off; every retry first
# checks whether the earlier attempt already took effect (see activities/account_opening.py).
MT5_WRITE = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
)
MT5_TIMEOUT = timedelta(seconds=30)

# Our own database: only connection trouble is expected, so retry patiently.
DATABASE = RetryPolicy(
    initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=10)
)
DATABASE_TIMEOUT = timedelta(seconds=20)

# Compensations must finish: no attempt cap, they escalate through their own failure alerts.
COMPENSATION = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1)
)

# Mail: an SMTP server that is down or refuses our login for now is waited for; a permanent
# refusal (a 5xx for this recipient or message) is final. A mail is given up after two days:
# the process that sends it goes on without it (the notification row stays).
MAIL = RetryPolicy(
    initial_interval=timedelta(seconds=5),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=10),
    non_retryable_error_types=["MailRejected"],
)
MAIL_TIMEOUT = timedelta(minutes=1)
MAIL_GIVE_UP = timedelta(days=2)

# Steps that read or write many rows at once: a list file of tens of thousands of parties, a
# batch of clients screened against every active list.
BULK_TIMEOUT = timedelta(minutes=10)
