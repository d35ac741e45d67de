"""Tests of outgoing mail (the catcher they send to: `tests.support.processes`)."""
