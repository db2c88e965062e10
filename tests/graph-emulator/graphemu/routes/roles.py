"""Directory role assignments: GET /roleManagement/directory/roleAssignments, the flat list of
who holds which built-in role (what the registration census asks to tell admins apart when the
userRegistrationDetails report is not available: reference §6.1 isAdmin, §11).

Each user's `directoryRoles` (role display names, tenant.py `_roles`) becomes one assignment at
directory scope "/", with the role's template id as roleDefinitionId (Entra's built-in ids;
an unknown name gets a stable uuid5). Only direct user assignments exist in the emulator.
"""

import base64
import uuid

from ..core import GraphError, Perms, route
from ..odata import Filter, page, select
from .reports import allow_query, check_filter_ops, metadata

READ = Perms.of(app=["RoleManagement.Read.Directory", "RoleManagement.Read.All",
                     "Directory.Read.All", "RoleManagement.ReadWrite.Directory",
                     "Directory.ReadWrite.All"],
                roles=["Global Reader", "Privileged Role Administrator", "Security Reader",
                       "Security Administrator", "Global Administrator"])

# Built-in role template ids (Entra "Microsoft Entra built-in roles" table).
TEMPLATE_IDS = {
    "Global Administrator": "62e90394-69f5-4237-9190-012177145e10",
    "Privileged Authentication Administrator": "7be44c8a-adaf-4e2a-84d6-ab2649e08a13",
    "Authentication Administrator": "c4e39bd9-1100-46d3-8c65-fb160da0071f",
    "Authentication Policy Administrator": "0526716b-113d-4c15-b2c8-68e3c22b9f80",
    "Privileged Role Administrator": "e8611ab8-c189-46e8-94e1-60213ab1f814",
    "Security Administrator": "194ae4cb-b126-40b2-bd5b-6091b380977d",
    "Security Reader": "5d6b6bb7-de71-4623-b4af-96380a352509",
    "Security Operator": "5f2222b1-57c3-48ba-8ad5-d4759f1fde6f",
    "Global Reader": "f2ef992c-3afb-46b9-b7cf-a126ee74c451",
    "Reports Reader": "4a5d8f65-41da-4de4-8968-e035b65339cf",
    "User Administrator": "fe930be7-5e62-47db-91af-98c3a49a38b1",
    "Helpdesk Administrator": "729827e3-9c14-49f7-bb1b-9608f156bbb8",
    "Password Administrator": "966707d0-3269-4727-9be2-8c3a10f19b9d",
    "Groups Administrator": "fdd7a751-b60b-444a-984c-02652fe8fa1c",
    "Conditional Access Administrator": "b1be1c3e-b65d-4f19-8427-f6fa0d97feb9",
    "Exchange Administrator": "29232cdf-9323-42fd-ade2-1d097af3e4de",
    "SharePoint Administrator": "f28a1f50-f6e7-4571-818b-6a12f2af6b6c",
    "Billing Administrator": "b0f54661-2d74-4c50-afa3-1ec803f12efe",
    "Directory Readers": "88d8e3e3-8f55-4a1e-953a-9b9898b8876b",
    "Directory Writers": "9360feb5-f418-4baa-8175-e2a00bac4301",
    "Guest Inviter": "95e79109-95c0-4d8e-aee3-d01accf2d47b",
    "Message Center Reader": "790c1fb9-7f7d-4f88-86a1-ef1f95c05c1b",
    "Usage Summary Reports Reader": "75934031-6c7e-415a-99d7-48dbd49e875e",
}
_NS = uuid.UUID("6ba7b811-9dad-11d1-80b4-00c04fd430c8")   # uuid.NAMESPACE_URL

FILTERABLE = {"principalId": {"eq"}, "roleDefinitionId": {"eq"}}


def template_id(name):
    return TEMPLATE_IDS.get(name) or str(uuid.uuid5(_NS, "graphemu-role:" + name))


def _b64(guid):
    return base64.urlsafe_b64encode(uuid.UUID(guid).bytes_le).decode().rstrip("=")


def assignments(tenant):
    """Every assignment, in directory order: users in tenant order, their roles by name."""
    out = []
    for uid, u in tenant.users.items():
        for name in sorted(u["_roles"]):
            rid = template_id(name)
            # Entra's ids look like base64url(role template) + base64url(principal) + "-1".
            out.append({"id": f"{_b64(rid)}{_b64(uid)}-1", "principalId": uid,
                        "roleDefinitionId": rid, "directoryScopeId": "/", "appScopeId": None,
                        "condition": None})
    return out


@route("GET", r"/roleManagement/directory/roleAssignments", perms=READ, cost=1)
def list_role_assignments(req):
    allow_query(req, {"$filter", "$select", "$top", "$skiptoken"})
    items = assignments(req.emu.tenant)
    text = req.query.get("$filter")
    if text:
        flt = Filter(text, {f: (lambda a, f=f: a[f]) for f in FILTERABLE})
        check_filter_ops(flt, FILTERABLE, {f: str for f in FILTERABLE},
                         "resource 'unifiedRoleAssignment'")
        items = [a for a in items if flt.matches(a)]
    sel = req.query.get("$select")
    if sel:
        known = {"id", "principalId", "roleDefinitionId", "directoryScopeId", "appScopeId",
                 "condition"}
        for name in (s.strip() for s in sel.split(",")):
            if name and name not in known:
                raise GraphError(400, "BadRequest",
                                 f"Could not find a property named '{name}' on type "
                                 "'microsoft.graph.unifiedRoleAssignment'.")
    return page(req, items, 100, 999, f"{metadata(req)}#roleManagement/directory/roleAssignments",
                lambda a: select(a, sel))


__all__ = ["TEMPLATE_IDS", "template_id", "assignments"]
