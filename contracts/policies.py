"""How each kind of step is retried and how long one attempt may take, named for what it
protects. A step's stub carries one of these; the workflow never picks a policy per call."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from temporalio.common import RetryPolicy


@dataclass(frozen=True)
class Policy:
    """One attempt's start-to-close time, the retries between attempts and, where a step may
    give up as a whole, the schedule-to-close time. A step with a `heartbeat` heartbeats while
    it works (`contracts.steps.implements` sees to it), so a worker that dies during a long
    attempt is noticed within `heartbeat`, not after the whole `timeout`."""

    timeout: timedelta
    retry: RetryPolicy
    give_up_after: timedelta | None = None
    heartbeat: timedelta | None = None


# MT5 writes: transient retcodes and lost answers are retried with back-off; every retry first
# checks whether the earlier attempt already took effect (see activities/account_opening.py).
MT5_WRITE = Policy(
    timeout=timedelta(seconds=30),
    retry=RetryPolicy(
        initial_interval=timedelta(seconds=1),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(seconds=30),
    ),
)

# Our own database: only connection trouble is expected, so retry patiently.
DATABASE = Policy(
    timeout=timedelta(seconds=20),
    retry=RetryPolicy(
        initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=10)
    ),
)

# Compensations must finish: no attempt cap, they escalate through their own failure alerts.
_UNDO_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1)
)
DATABASE_COMPENSATION = Policy(timeout=DATABASE.timeout, retry=_UNDO_RETRY)
MT5_COMPENSATION = Policy(timeout=MT5_WRITE.timeout, retry=_UNDO_RETRY)

# Mail: an SMTP server that is down or refuses our login for now is waited for; a permanent
# refusal (a 5xx for this recipient or message) is final. A mail is given up after two days:
# the process that sends it goes on without it (the notification row stays).
MAIL = Policy(
    timeout=timedelta(minutes=1),
    retry=RetryPolicy(
        initial_interval=timedelta(seconds=5),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(minutes=10),
        non_retryable_error_types=["MailRejected"],
    ),
    give_up_after=timedelta(days=2),
)

# Steps that read or write many rows at once: a list file of tens of thousands of parties, a
# batch of clients screened against every active list.
BULK = Policy(timeout=timedelta(minutes=10), retry=DATABASE.retry, heartbeat=timedelta(seconds=30))

# Asking a processor is worth a few quick tries; beyond that the workflow's next poll is the
# retry (it asks again after its `PaymentTimers` interval), so one attempt never stalls it.
PROCESSOR_QUERY = Policy(
    timeout=timedelta(seconds=30),
    retry=RetryPolicy(
        initial_interval=timedelta(seconds=2),
        maximum_interval=timedelta(seconds=30),
        maximum_attempts=5,
    ),
)
