"""The KYC case rules: four-eyes, closed cases, requests for information."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.errors import BackOfficeError, Conflict, InvalidInput
from domain.kyc import (
    CaseState,
    CaseStatus,
    Decision,
    ReviewAction,
    apply_decision,
    check_decision,
    info_received,
)

OFFICERS = ("ann", "ben", "cho")


def decision(officer: str, action: ReviewAction, info: str | None = None) -> Decision:
    return Decision(officer_id=officer, action=action, reason="checked", info_needed=info)


def in_review(four_eyes: bool) -> CaseState:
    return CaseState(status=CaseStatus.IN_REVIEW, requires_four_eyes=four_eyes)


class TestApprove:
    def test_one_approval_closes_a_standard_case(self) -> None:
        state = apply_decision(in_review(False), decision("ann", ReviewAction.APPROVE))
        assert state.status is CaseStatus.APPROVED

    def test_high_risk_needs_a_second_officer(self) -> None:
        state = apply_decision(in_review(True), decision("ann", ReviewAction.APPROVE))
        assert state.status is CaseStatus.AWAITING_SECOND_APPROVAL
        with pytest.raises(Conflict, match="different compliance officer"):
            apply_decision(state, decision("ann", ReviewAction.APPROVE))
        final = apply_decision(state, decision("ben", ReviewAction.APPROVE))
        assert final.status is CaseStatus.APPROVED
        assert final.approvals == ("ann", "ben")

    def test_not_while_the_client_owes_information(self) -> None:
        state = apply_decision(
            in_review(False), decision("ann", ReviewAction.REQUEST_INFO, "proof of address")
        )
        with pytest.raises(Conflict, match="waits for the client"):
            check_decision(state, decision("ben", ReviewAction.APPROVE))

    def test_a_request_for_information_starts_a_new_round(self) -> None:
        state = apply_decision(in_review(True), decision("ann", ReviewAction.APPROVE))
        state = apply_decision(state, decision("ben", ReviewAction.REQUEST_INFO, "a newer bill"))
        state = info_received(state)
        assert state.approvals == () and state.review_round == 2
        # The first officer may approve again in the new round, but still not alone.
        state = apply_decision(state, decision("ann", ReviewAction.APPROVE))
        assert state.status is CaseStatus.AWAITING_SECOND_APPROVAL


class TestRefusals:
    @pytest.mark.parametrize("closed", [CaseStatus.APPROVED, CaseStatus.REJECTED])
    @pytest.mark.parametrize("action", list(ReviewAction))
    def test_a_closed_case_takes_no_action(self, closed: CaseStatus, action: ReviewAction) -> None:
        state = CaseState(status=closed, requires_four_eyes=False)
        with pytest.raises(Conflict, match="closed"):
            check_decision(state, decision("ann", action, "x"))

    def test_request_info_must_say_what(self) -> None:
        with pytest.raises(InvalidInput):
            check_decision(in_review(False), decision("ann", ReviewAction.REQUEST_INFO, "  "))

    def test_info_only_when_requested(self) -> None:
        with pytest.raises(Conflict):
            info_received(in_review(False))


events = st.lists(
    st.one_of(
        st.tuples(st.sampled_from(OFFICERS), st.sampled_from(list(ReviewAction))),
        st.just(("client", None)),
    ),
    max_size=12,
)


@given(four_eyes=st.booleans(), steps=events)
def test_no_case_is_approved_by_fewer_distinct_officers_than_required(
    four_eyes: bool, steps: list[tuple[str, ReviewAction | None]]
) -> None:
    state = in_review(four_eyes)
    for who, action in steps:
        before = state
        try:
            if action is None:
                state = info_received(state)
            else:
                state = apply_decision(state, decision(who, action, "details"))
        except BackOfficeError:
            assert state == before  # a refusal changes nothing
            continue
        if before.closed:
            raise AssertionError("a closed case changed")
        if state.status is CaseStatus.APPROVED:
            assert len(set(state.approvals)) == (2 if four_eyes else 1)
