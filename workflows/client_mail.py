"""One email to a client, sent at least once under a Message-ID derived from its key.

The API starts this workflow for mail that belongs to no other process (the sign-up's
verification link); every other workflow sends its mail by running the same step itself,
through `send_mail` below, with a key made of its own id and the step.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from contracts import client_mail
    from contracts.client_mail import CLIENT_MAIL, ClientMailInput


@workflow.defn(name=CLIENT_MAIL.name)
class ClientMailWorkflow:
    @workflow.run
    async def run(self, mail: ClientMailInput) -> None:
        await client_mail.send_client_mail(mail)


async def send_mail(mail: ClientMailInput) -> bool:
    """Send `mail` from inside another workflow. A mail that cannot be delivered (refused for
    good, or the mail server unreachable for its policy's `give_up_after`) does not stop the
    process that sends it: the failure is logged and False returned."""
    try:
        await client_mail.send_client_mail(mail)
    except ActivityError as failure:
        workflow.logger.warning(
            "mail %s (%s) was not delivered: %s", mail.key, mail.template.value, failure.cause
        )
        return False
    return True
