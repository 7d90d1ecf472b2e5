"""account_members: the people in a Prefect Cloud account, read-only (`data:` only), by email.

Terraform's `prefect_account_member` data source (and what its import-only `prefect_user` and
`prefect_account_member` resources show): people join an account by signing up and accepting an
invitation, which no API does, so they are read, never declared:

    data: {account_members: {ada.lovelace@example.com: {}}}
    ... ${data.account_members.ada.lovelace@example.com.user_id}
"""

from __future__ import annotations

from typing import Any

from resources.base import LiveObject, NoOptions, ResourceKind, wanted

FIELDS = ("email", "handle", "first_name", "last_name", "account_role_name", "account_role_id", "user_id", "actor_id")


class AccountMembers(ResourceKind):
    kind = "account_members"
    spec = NoOptions
    identity = "EMAIL"
    data_only = True
    cloud_only = True

    def list(self, client, names: set[str] | None) -> list[LiveObject]:
        body: dict[str, Any] = {} if names is None else {"account_memberships": {"email": {"any_": sorted(names)}}}
        found = client.filter(client.account("/account_memberships/filter"), body)
        return [LiveObject(member["id"], member["email"], {field: member.get(field) for field in FIELDS})
                for member in found if wanted(member["email"], names)]
