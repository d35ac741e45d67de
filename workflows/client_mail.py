"""One email to a client, sent at least once under a Message-ID derived from its key.

The API starts this workflow for mail that belongs to no other process (the sign-up's
verification link); every other workflow sends its mail by running the same activity itself,
through `send_mail`, with a key made of its own id and the step.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from domain.kyc_flow import CLIENT_MAIL_WORKFLOW, ClientMailInput, KycStep
    from workflows import policies


@workflow.defn(name=CLIENT_MAIL_WORKFLOW)
class ClientMailWorkflow:
    @workflow.run
    async def run(self, mail: ClientMailInput) -> None:
        await _send(mail)


async def _send(mail: ClientMailInput) -> None:
    await workflow.execute_activity(
        KycStep.SEND_CLIENT_MAIL,
        mail,
        start_to_close_timeout=policies.MAIL_TIMEOUT,
        schedule_to_close_timeout=policies.MAIL_GIVE_UP,
        retry_policy=policies.MAIL,
    )


async def send_mail(mail: ClientMailInput) -> bool:
    """Send `mail` from inside another workflow. A mail that cannot be delivered (refused for
    good, or the mail server unreachable for `MAIL_GIVE_UP`) does not stop the process that
    sends it: the failure is logged and False returned."""
    try:
        await _send(mail)
    except ActivityError as failure:
        workflow.logger.warning(
            "mail %s (%s) was not delivered: %s", mail.key, mail.template.value, failure.cause
        )
        return False
    return True
