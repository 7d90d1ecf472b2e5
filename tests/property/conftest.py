"""Property-based tests: deterministic (the same examples on every run, so CI never flakes on a
new one), no example database written, no per-example deadline (first calls import YAML and
pydantic machinery)."""

from hypothesis import HealthCheck, settings

settings.register_profile(
    "property",
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=150,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("property")
