"""The JSON Schema of configuration files, generated from the resource kinds' pydantic models."""

from __future__ import annotations

from typing import Any, Optional

from pydantic import BaseModel, ConfigDict, create_model

from provider.config import Moved
from resources import KINDS


class _DataSource(BaseModel):
    """A data source takes no options: `{}`."""

    model_config = ConfigDict(extra="forbid")


def configuration_schema() -> dict[str, Any]:
    fields: dict[str, Any] = {
        kind_name: (Optional[dict[str, kind.spec]], None)  # noqa: UP007
        for kind_name, kind in KINDS.items() if kind.declarable  # nested kinds are declared inside their parent
    }
    readable = {kind_name: (Optional[dict[str, _DataSource]], None)  # noqa: UP007
                for kind_name, kind in KINDS.items() if not kind.nested_under}
    data = create_model("DataSources", __config__=ConfigDict(extra="forbid"), **readable)
    fields["data"] = (Optional[data], None)  # noqa: UP007  (objects read, never managed)
    fields["moved"] = (Optional[list[Moved]], None)  # noqa: UP007
    fields["backend"] = (Optional[dict[str, dict[str, Any]]], None)  # noqa: UP007
    fields["workspace"] = (Optional[str], None)  # noqa: UP007  (a Cloud workspace's handle)
    fields["prefect_yaml"] = (Optional[list[str]], None)  # noqa: UP007
    fields["step_outputs"] = (Optional[dict[str, dict[str, Any]]], None)  # noqa: UP007  (prefect.yaml build/push steps)
    model = create_model("PrefectProviderConfiguration", **fields)
    schema = model.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["additionalProperties"] = False
    return schema
