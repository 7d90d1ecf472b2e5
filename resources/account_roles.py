"""account_roles: the Prefect Cloud account's roles, read-only (`data:` only).

Terraform's `prefect_account_role` data source: an account role by name (Owner, Admin, Member or a
custom one) with its id and permissions, as Cloud lists them:

    data: {account_roles: {Admin: {}}}
    ... ${data.account_roles.Admin.id}
"""

from __future__ import annotations

from resources.base import LiveObject, NoOptions, ResourceKind, name_filter, wanted


class AccountRoles(ResourceKind):
    kind = "account_roles"
    spec = NoOptions
    cloud_only = True
    data_only = True

    def list(self, client, names: set[str] | None) -> list[LiveObject]:
        found = client.filter(client.account("/account_roles/filter"), name_filter("account_roles", names))
        return [LiveObject(role["id"], role["name"], {
                    "permissions": sorted(role.get("permissions") or []),
                    "is_system_role": role.get("is_system_role", False),
                }) for role in found if wanted(role["name"], names)]
