"""Who works the risk desk: the dealing desk and risk set books and thresholds and handle
alerts; the auditor reads. The API's and the console's policies over the same roles."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from api.policy import ConsolePolicy, Policy, Principal
from domain.roles import StaffRole

RISK_DESK = frozenset({StaffRole.ADMIN, StaffRole.DEALER, StaffRole.RISK})
RISK_READERS = RISK_DESK | {StaffRole.AUDITOR}
risk_desk = Policy("risk desk", staff=RISK_DESK)
risk_readers = Policy("risk readers", staff=RISK_READERS)
console_risk_readers = ConsolePolicy("console: risk readers", staff=RISK_READERS)
console_risk_desk = ConsolePolicy("console: risk desk", staff=RISK_DESK)
RiskDesk = Annotated[Principal, Depends(risk_desk)]
RiskReader = Annotated[Principal, Depends(risk_readers)]
ConsoleRiskReader = Annotated[Principal, Depends(console_risk_readers)]
ConsoleRiskDesk = Annotated[Principal, Depends(console_risk_desk)]
