"""The one retry of provisioners for a cloud's documented "not yet": bounded, jittered, announced.

It runs the real helper (provisioners.base.until_propagated) on calls that fail a given number of
times with a cloud's error, as the fakes and the AWS fault proxy make the SDKs fail in the
provisioner tests; here its bounds and its words are checked exactly and fast.
"""

from __future__ import annotations

import time

import pytest

from resources.base import progress_to  # first: the resource kinds import the provisioners
from provisioners.base import CloudError, Propagation, refused_with, until_propagated  # noqa: I001

NOT_YET = Propagation("the thing to appear", "that the thing exists", refused_with("NotYet"))


class Flaky:
    """A call that answers `code` `failures` times, then "done"."""

    def __init__(self, failures: int, code: str = "NotYet"):
        self.failures, self.code, self.calls = failures, code, 0

    def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise CloudError(f"svc:Call failed: {self.code}: not there", code=self.code)
        return "done"


@pytest.mark.parametrize("failures", [0, 1, 4])
def test_a_call_is_tried_again_while_the_cloud_catches_up_and_each_wait_is_announced(monkeypatch, failures):
    monkeypatch.setenv("PREFECT_PROVIDER_PROPAGATION_WAIT", "2")
    lines: list[str] = []
    call = Flaky(failures)
    with progress_to(lines.append):
        assert until_propagated("svc:Call", call, NOT_YET) == "done"
    assert call.calls == failures + 1
    assert lines == [f"waiting for the thing to appear, {n}/12…" for n in range(1, failures + 1)]


def test_another_error_is_not_waited_for(monkeypatch):
    monkeypatch.setenv("PREFECT_PROVIDER_PROPAGATION_WAIT", "2")
    call = Flaky(1, code="AccessDenied")
    with pytest.raises(CloudError, match="AccessDenied"):
        until_propagated("svc:Call", call, NOT_YET)
    assert call.calls == 1


@pytest.mark.parametrize("budget", [0.5, 2.0])
def test_the_wait_is_bounded_and_the_last_error_names_the_call_and_what_to_check(monkeypatch, budget):
    monkeypatch.setenv("PREFECT_PROVIDER_PROPAGATION_WAIT", str(budget))
    call = Flaky(10_000)
    started = time.monotonic()
    with pytest.raises(CloudError) as raised:
        until_propagated("svc:Call", call, NOT_YET)
    elapsed = time.monotonic() - started
    assert elapsed <= budget + 0.2
    assert 2 <= call.calls <= 12
    assert raised.value.code == "NotYet"
    assert str(raised.value).startswith(f"svc:Call: gave up waiting for the thing to appear after {call.calls} attempts in ")
    assert (f"(at most {budget:g} s, PREFECT_PROVIDER_PROPAGATION_WAIT); check that the thing exists. "
            "Last error: svc:Call failed: NotYet: not there") in str(raised.value)


def test_a_bad_wait_setting_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("PREFECT_PROVIDER_PROPAGATION_WAIT", "soon")
    with pytest.raises(CloudError, match=r"PREFECT_PROVIDER_PROPAGATION_WAIT='soon': expected a number of seconds"):
        until_propagated("svc:Call", Flaky(1), NOT_YET)
