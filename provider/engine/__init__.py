"""The kind-agnostic engine: refresh and diff (what is there), planning (what to change), applying
(changing it, recording each step in state) and importing. It never prints; the workflow around it
(locks, state, saved plans) is provider.session, the front ends provider.cli and provider.pulumi."""

from provider.engine.applying import ApplyResult, Event, Step, apply_plan, build_steps, create_object, describe_error
from provider.engine.diff import changed_fields, same_value
from provider.engine.importing import declared_resource, import_object
from provider.engine.planning import (
    Desired,
    PlanOptions,
    apply_moves,
    check_cloud_features,
    cloud_refusal,
    desired_attributes,
    make_plan,
    read_data,
    state_addresses,
)
from provider.engine.refresh import LiveView, refresh

__all__ = [
    "ApplyResult", "Desired", "Event", "LiveView", "PlanOptions", "Step", "apply_moves", "apply_plan", "build_steps",
    "changed_fields", "check_cloud_features", "cloud_refusal", "create_object", "declared_resource", "describe_error",
    "desired_attributes", "import_object", "make_plan", "read_data", "refresh", "same_value", "state_addresses",
]
