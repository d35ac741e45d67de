"""A stand-in MT5 trade server speaking the manager Web API (REST variant).

Written from the protocol reference alone: it shares no code, enums or field lists with
BrokerFlow, so a misreading on one side shows up as a failing test instead of hiding in both.
"""
