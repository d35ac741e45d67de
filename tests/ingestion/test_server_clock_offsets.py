"""Each MT5 server has its own clock offset setting, the single `ib.server_clock_offset` its
default; a gateway whose server's `time/get` disagrees with the configured offset says so."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest

from mt5_adapter.server_time import ServerZone
from mt5_adapter.webapi import WebApiGateway
from settings import IbRules, Mt5ServerSettings, Settings


def fleet(monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("BROKERFLOW_IB__SERVER_CLOCK_OFFSET", "7200")
    monkeypatch.setenv("BROKERFLOW_MT5__NAME", "demo")
    monkeypatch.setenv(
        "BROKERFLOW_MT5_SERVERS",
        '[{"name": "live-1", "server_clock_offset": 10800}, {"name": "live-2"}]',
    )
    return Settings(_env_file=None)


def test_each_server_has_its_offset_the_old_setting_is_the_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = fleet(monkeypatch)
    assert settings.server_clock_offset_of("live-1") == 10800
    assert settings.server_clock_offset_of("live-2") == 7200  # not set: the shared one
    assert settings.server_clock_offset_of("demo") == 7200
    assert settings.server_clock_offset_of("unknown") == 7200
    assert Settings(_env_file=None, ib=IbRules()).server_clock_offset_of("demo") == 0
    with pytest.raises(ValueError, match="server_clock_offset"):
        Mt5ServerSettings(server_clock_offset=15 * 3600)


def test_a_gateway_warns_when_time_get_disagrees(caplog: pytest.LogCaptureFixture) -> None:
    zone = ServerZone(minutes=120)  # no daylight saving: 7200 s all year
    assert zone.offset_at(datetime.now(UTC)).total_seconds() == 7200
    agreeing = WebApiGateway(Mt5ServerSettings(name="agrees", server_clock_offset=7200))
    unset = WebApiGateway(Mt5ServerSettings(name="unset"))
    wrong = WebApiGateway(Mt5ServerSettings(name="wrong", server_clock_offset=10800))
    with caplog.at_level(logging.WARNING, logger="mt5_adapter.webapi"):
        for gateway in (agreeing, unset, wrong):
            gateway._check_configured_offset(zone)
    assert [r.getMessage() for r in caplog.records] == [
        "MT5 server wrong: configured clock offset 10800 s, time/get says 7200 s"
    ]
