"""The one base of BrokerFlow's immutable pydantic values: workflow payloads, step arguments and
the inputs and outputs of rules, none of which is changed once made."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)
