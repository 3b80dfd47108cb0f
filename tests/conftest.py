"""Shared test settings: hypothesis profiles and a guard on global grad mode.

Profiles: ``ci`` (small, deterministic, used when ``CI`` is set), ``dev`` (the default
on a workstation) and ``thorough`` (many examples, for a long local run). Choose one
with ``HYPOTHESIS_PROFILE=thorough pytest``.
"""

import os

import pytest
from hypothesis import HealthCheck, settings

import tinydiff

settings.register_profile(
    "ci",
    max_examples=20,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "dev", max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "thorough", max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


@pytest.fixture(autouse=True)
def _grad_mode_is_restored():
    """Fail any test that leaves grad recording switched off."""
    assert tinydiff.is_grad_enabled()
    yield
    assert tinydiff.is_grad_enabled(), "the test left grad mode disabled"
