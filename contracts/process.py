"""A workflow as the rest of BrokerFlow sees it: its name and input, and the typed signals and
updates it accepts. The API starts, signals and updates workflows only through these (see
`api/temporal.py`), and a parent workflow runs a child through them, so a renamed handler or a
changed payload is a type error, not a message nobody receives."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from temporalio import workflow
from temporalio.common import WorkflowIDReusePolicy

from contracts.steps import temporal_result_type

A = TypeVar("A")
R = TypeVar("R")


@dataclass(frozen=True)
class Process(Generic[A, R]):
    """A workflow type: `name` is its name in Temporal (never changed once deployed)."""

    name: str
    argument: type[A]
    result: type[R]

    async def run_as_child(self, argument: A, *, id: str) -> R:
        """Run it as a child of the calling workflow and wait for its result."""
        result = await workflow.execute_child_workflow(
            self.name, argument, id=id, result_type=temporal_result_type(self.result)
        )
        return result  # type: ignore[no-any-return]

    async def start_as_child(
        self,
        argument: A,
        *,
        id: str,
        parent_close_policy: workflow.ParentClosePolicy,
        id_reuse_policy: WorkflowIDReusePolicy = WorkflowIDReusePolicy.ALLOW_DUPLICATE,
    ) -> None:
        """Start it as a child of the calling workflow without waiting for it."""
        await workflow.start_child_workflow(
            self.name,
            argument,
            id=id,
            parent_close_policy=parent_close_policy,
            id_reuse_policy=id_reuse_policy,
            result_type=temporal_result_type(self.result),
        )


@dataclass(frozen=True)
class Signal(Generic[A]):
    """A signal a workflow accepts: `@workflow.signal(name=SIGNAL.name)` on its handler."""

    name: str
    argument: type[A]


@dataclass(frozen=True)
class Update(Generic[A, R]):
    """An update a workflow accepts: `@workflow.update(name=UPDATE.name)` on its handler."""

    name: str
    argument: type[A]
    result: type[R]


@dataclass(frozen=True)
class Query(Generic[R]):
    """A query a workflow answers: `@workflow.query(name=QUERY.name)` on its handler."""

    name: str
    result: type[R]
