"""GET/POST /api/principal and GET/PATCH/DELETE /api/principal/{id}: shapes and errors."""

import pytest

from apps.accounts.models import Principal, PrincipalEmail
from mailadmin.core.models import AuditEvent

pytestmark = pytest.mark.django_db

NOT_FOUND = {
    "type": "about:blank",
    "status": 404,
    "title": "Not Found",
    "detail": "The requested resource does not exist on this server.",
}
STRONG = "Tr0ub4dor&3-horse-staple"


def names_in(response) -> set[str]:
    return {item["objectRepr"] for item in response.json()["data"]["items"]}


def names(response) -> set[str]:
    return {item["name"] for item in response.json()["data"]["items"]}


def create(client, **body):
    return client.post("/api/principal", body, format="json")


def patch(client, ref, *ops):
    return client.patch(f"/api/principal/{ref}", list(ops), format="json")


def op(action, field, value=None):
    return {"action": action, "field": field, "value": value}


def detail(response) -> str:
    return response.json()["detail"]


# --- list ---------------------------------------------------------------------------------


def test_it_lists_the_principals_of_the_own_tenant(api_a, world_a, world_b):
    response = api_a.get("/api/principal")
    assert response.status_code == 200
    body = response.json()
    assert names(response) == {
        "admin-a",
        "a.example",
        "jane-a",
        "staff-a",
        "all-a",
        "helpdesk-a",
    }
    assert body["data"]["total"] == 6


def test_it_filters_by_types(api_a, world_a):
    response = api_a.get("/api/principal?types=group,list")
    assert response.status_code == 200
    assert names(response) == {"staff-a", "all-a"}


def test_it_searches_names_descriptions_and_addresses(api_a, world_a):
    assert names(api_a.get("/api/principal?filter=jane@a.ex")) == {"jane-a"}
    assert names(api_a.get("/api/principal?filter=Jane a")) == {"jane-a"}
    assert names(api_a.get("/api/principal?filter=STAFF")) == {"staff-a"}
    assert names(api_a.get("/api/principal?filter=nothing-like-this")) == set()


def test_it_finds_unicode_domains_by_their_unicode_form(api_a, world_a, make_principal):
    domain = make_principal(tenant=world_a.tenant, roles=(), name="xn--bcher-kva.example")
    domain.type = "domain"
    domain.save()
    PrincipalEmail.objects.create(principal=world_a.account, address="j@xn--bcher-kva.example")
    assert "jane-a" in names(api_a.get("/api/principal?filter=bücher"))


def test_it_pages_with_a_total(api_a, world_a):
    response = api_a.get("/api/principal?limit=2&page=2")
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["total"] == 6
    assert len(data["items"]) == 2
    everything = [i["name"] for i in api_a.get("/api/principal?limit=100").json()["data"]["items"]]
    assert [i["name"] for i in data["items"]] == everything[2:4]


def test_it_caps_the_total_at_max_total(api_a, world_a):
    response = api_a.get("/api/principal?limit=1&page=2&max-total=3")
    assert response.json()["data"]["total"] == 3


def test_it_orders_by_creation(api_a, world_a):
    items = api_a.get("/api/principal?order=-created").json()["data"]["items"]
    assert items[0]["name"] == "helpdesk-a"


def test_it_rejects_an_unknown_list_parameter(api_a):
    response = api_a.get("/api/principal?colour=red")
    assert response.status_code == 400
    assert detail(response) == "Unrecognized field: colour"


def test_it_rejects_an_unknown_type(api_a):
    response = api_a.get("/api/principal?types=individual,robot")
    assert response.status_code == 400
    assert detail(response) == "Unknown principal type: robot"


def test_it_lets_a_superadmin_list_tenants(api_root, world_a, world_b):
    response = api_root.get("/api/principal?types=tenant")
    assert names(response) == {"tenant-a", "tenant-b"}
    tenant = response.json()["data"]["items"][0]
    assert tenant["maxAccounts"] is None and "maxDomains" in tenant


def test_it_needs_principal_list(api_client_for, user_a):
    response = api_client_for(user_a).get("/api/principal")
    assert response.status_code == 403
    assert response.json()["permission"] == "principal-list"


def test_it_needs_authentication(anon_api):
    assert anon_api.get("/api/principal").status_code == 401


# --- fetch --------------------------------------------------------------------------------


def test_it_fetches_by_id_and_by_name_in_the_spec_shape(api_a, world_a):
    by_name = api_a.get("/api/principal/jane-a")
    by_id = api_a.get(f"/api/principal/{world_a.account.pk}")
    assert by_name.status_code == by_id.status_code == 200
    assert by_name.json() == by_id.json()
    assert by_name.json()["data"] == {
        "id": world_a.account.pk,
        "type": "individual",
        "name": "jane-a",
        "description": "Jane a",
        "quota": 0,
        "tenant": "tenant-a",
        "emails": ["jane@a.example"],
        "urls": [],
        "memberOf": ["staff-a"],
        "roles": ["user"],
        "lists": ["all-a"],
        "members": [],
        "enabledPermissions": [],
        "disabledPermissions": [],
        "externalMembers": [],
    }


def test_it_shows_members_of_groups_lists_and_roles(api_a, world_a):
    world_a.role.role_holders.add(world_a.account)
    assert api_a.get("/api/principal/staff-a").json()["data"]["members"] == ["jane-a"]
    assert api_a.get("/api/principal/all-a").json()["data"]["members"] == ["jane-a"]
    assert api_a.get("/api/principal/helpdesk-a").json()["data"]["members"] == ["jane-a"]


def test_it_answers_404_with_the_spec_body_for_a_missing_principal(api_a):
    for ref in ("nobody", "999999"):
        response = api_a.get(f"/api/principal/{ref}")
        assert response.status_code == 404
        assert response.json() == NOT_FOUND


def test_it_answers_the_same_404_for_another_tenants_principal(api_a, world_b):
    response = api_a.get(f"/api/principal/{world_b.account.pk}")
    assert response.status_code == 404
    assert response.json() == NOT_FOUND


# --- create -------------------------------------------------------------------------------


def test_it_creates_an_account_in_the_actors_tenant(api_a, world_a):
    response = create(
        api_a,
        type="individual",
        name="john",
        description="John Doe",
        secrets=[STRONG],
        emails=["John@A.example", "jd@a.example"],
        roles=["user"],
        memberOf=["staff-a"],
        lists=["all-a"],
        quota=1000,
    )
    assert response.status_code == 200, response.json()
    john = Principal.objects.get(name="john")
    assert response.json() == {"data": john.pk}
    assert john.tenant == world_a.tenant
    assert john.created_by == world_a.admin
    assert john.check_password(STRONG)
    assert john.quota == 1000
    assert list(john.emails.values_list("address", "position")) == [
        ("john@a.example", 0),
        ("jd@a.example", 1),
    ]
    assert {p.name for p in john.member_of.all()} == {"staff-a", "all-a"}
    assert [r.name for r in john.roles.all()] == ["user"]


def test_it_accepts_the_spec_example_body_for_a_domain(api_a, world_a):
    response = create(
        api_a,
        type="domain",
        quota=0,
        name="Example.ORG",
        description="Example domain",
        secrets=[],
        emails=[],
        urls=[],
        memberOf=[],
        roles=[],
        lists=[],
        members=[],
        enabledPermissions=[],
        disabledPermissions=[],
        externalMembers=[],
    )
    assert response.status_code == 200, response.json()
    domain = Principal.objects.get(pk=response.json()["data"])
    assert (domain.name, domain.type, domain.tenant_id) == (
        "example.org",
        "domain",
        world_a.tenant.pk,
    )


def test_it_stores_idn_addresses_in_punycode_and_shows_them_in_unicode(api_a, world_a):
    assert create(api_a, type="domain", name="Bücher.example").status_code == 200
    response = create(api_a, type="individual", name="leser", emails=["Leser@BÜCHER.example"])
    assert response.status_code == 200, response.json()
    assert PrincipalEmail.objects.get(principal__name="leser").address == (
        "leser@xn--bcher-kva.example"
    )
    assert api_a.get("/api/principal/leser").json()["data"]["emails"] == ["leser@bücher.example"]


def test_it_rejects_an_unknown_field(api_a):
    response = create(api_a, type="individual", name="x", extraStorage=5)
    assert response.status_code == 400
    assert detail(response) == "Unrecognized field: extraStorage"
    assert response.json()["errors"] == [
        {"field": "extraStorage", "message": "Unrecognized field: extraStorage"}
    ]
    assert not Principal.objects.filter(name="x").exists()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("quota", "lots", "Invalid value for field quota: A valid integer is required."),
        ("quota", True, "Invalid value for field quota: A valid integer is required."),
        (
            "quota",
            -1,
            "Invalid value for field quota: Ensure this value is greater than or equal to 0.",
        ),
        ("description", 5, "Invalid value for field description: Not a valid string."),
        (
            "emails",
            "jane@a.example",
            'Invalid value for field emails: Expected a list of items but got type "str".',
        ),
        ("type", "robot", 'Invalid value for field type: "robot" is not a valid choice.'),
    ],
)
def test_it_names_a_field_of_the_wrong_type(api_a, field, value, message):
    body = {"type": "individual", "name": "typed", field: value}
    response = api_a.post("/api/principal", body, format="json")
    assert response.status_code == 400
    assert detail(response) == message
    assert response.json()["errors"][0]["field"] == field


def test_it_names_a_missing_required_field(api_a):
    response = create(api_a, type="individual")
    assert response.status_code == 400
    assert detail(response) == "Missing required field: name"


def test_it_rejects_a_duplicate_address_naming_it(api_a, world_a):
    response = create(api_a, type="individual", name="john", emails=["JANE@a.example"])
    assert response.status_code == 400
    assert detail(response) == "The email address jane@a.example is already in use."
    assert not Principal.objects.filter(name="john").exists()


def test_it_rejects_an_address_outside_the_tenants_domains(api_a, world_a, world_b):
    for address, domain in (("x@b.example", "b.example"), ("x@nowhere.example", "nowhere.example")):
        response = create(api_a, type="individual", name="john", emails=[address])
        assert response.status_code == 400
        assert detail(response) == f"The domain {domain} is not a domain of this tenant."


def test_it_rejects_an_address_listed_twice(api_a, world_a):
    response = create(api_a, type="individual", name="john", emails=["j@a.example", "J@A.example"])
    assert response.status_code == 400
    assert detail(response) == "j@a.example is listed twice in emails."


def test_it_rejects_an_invalid_address_naming_it(api_a, world_a):
    response = create(api_a, type="individual", name="john", emails=["not-an-address"])
    assert response.status_code == 400
    assert detail(response) == "'not-an-address' is not a valid email address."


def test_it_rejects_a_taken_name_in_any_tenant(api_a, world_a, world_b):
    for name in ("jane-a", "JANE-A", "jane-b", "tenant-b"):
        response = create(api_a, type="individual", name=name)
        assert response.status_code == 400
        assert detail(response) == f"The name '{name}' is already taken."


RULES = "is not valid: use letters, digits, '.', '_', '-' and '@' (at most 255 characters)."


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("has space", f"The name 'has space' {RULES}"),
        ("slash/name", f"The name 'slash/name' {RULES}"),
        ("ünïcode", f"The name 'ünïcode' {RULES}"),
        ("12345", "The name '12345' is not valid: it can't be only digits."),
        (
            "x" * 256,
            "Invalid value for field name: Ensure this field has no more than 255 characters.",
        ),
    ],
)
def test_it_applies_login_name_rules(api_a, name, message):
    response = create(api_a, type="individual", name=name)
    assert response.status_code == 400
    assert detail(response) == message


def test_it_rejects_an_unknown_permission(api_a):
    response = create(api_a, type="individual", name="john", enabledPermissions=["fly"])
    assert response.status_code == 400
    assert detail(response) == "Unknown permission: fly"


def test_it_refuses_to_grant_a_permission_the_actor_lacks(api_a):
    response = create(api_a, type="individual", name="john", enabledPermissions=["logs-view"])
    assert response.status_code == 400
    assert detail(response) == (
        "You can't grant the permission 'logs-view' because you don't hold it."
    )


def test_it_refuses_the_admin_role_to_tenant_admins(api_a):
    response = create(api_a, type="individual", name="john", roles=["admin"])
    assert response.status_code == 400
    assert detail(response) == "Only a superadmin can grant the role admin."


def test_it_refuses_tenants_to_tenant_admins(api_a):
    response = create(api_a, type="tenant", name="tenant-c")
    assert response.status_code == 403
    assert response.json()["permission"] == "tenant-create"


def test_it_keeps_tenant_admins_in_their_tenant(api_a, world_b):
    response = create(api_a, type="group", name="g", tenant="tenant-b")
    assert response.status_code == 400
    assert detail(response) == "No such principal: tenant-b"
    ok = create(api_a, type="group", name="g", tenant="tenant-a")
    assert ok.status_code == 200


def test_it_lets_a_superadmin_create_in_a_named_tenant(api_root, world_b):
    response = create(api_root, type="group", name="g", tenant="tenant-b")
    assert response.status_code == 200
    assert Principal.objects.get(name="g").tenant == world_b.tenant


def test_it_lets_a_superadmin_create_the_servers_own_principals(api_root, superadmin):
    response = create(api_root, type="group", name="g")
    assert response.status_code == 200
    assert Principal.objects.get(name="g").tenant is None
    root2 = create(api_root, type="individual", name="root2", roles=["admin"], secrets=STRONG)
    assert root2.status_code == 200
    assert Principal.objects.get(name="root2").is_superuser
    assert create(api_root, type="tenant", name="tenant-c").status_code == 200


def test_it_refuses_the_admin_role_inside_a_tenant(api_root, tenant_a):
    response = create(api_root, type="individual", name="x", tenant="tenant-a", roles=["admin"])
    assert response.status_code == 400
    assert detail(response) == ("The role admin is only for superadmins, who belong to no tenant.")


def test_it_answers_foreign_and_missing_references_alike(api_a, world_a, world_b):
    foreign = create(api_a, type="individual", name="john", memberOf=["staff-b"])
    missing = create(api_a, type="individual", name="john", memberOf=["staff-z"])
    assert foreign.status_code == missing.status_code == 400
    assert detail(foreign) == "No such principal: staff-b"
    assert detail(missing) == "No such principal: staff-z"
    role = create(api_a, type="individual", name="john", roles=["helpdesk-b"])
    assert detail(role) == "No such principal: helpdesk-b"


def test_it_checks_the_kind_of_membership(api_a, world_a):
    response = create(api_a, type="individual", name="john", memberOf=["all-a"])
    assert detail(response) == "'all-a' is not a group."
    response = create(api_a, type="individual", name="john", lists=["staff-a"])
    assert detail(response) == "'staff-a' is not a mailing list."


def test_it_rejects_fields_that_do_not_apply_to_the_type(api_a, world_a):
    response = create(api_a, type="domain", name="c.example", emails=["x@a.example"])
    assert response.status_code == 400
    assert detail(response) == "The field emails does not apply to a principal of type domain."


def test_it_rejects_a_weak_password(api_a):
    response = create(api_a, type="individual", name="john", secrets=["short"])
    assert response.status_code == 400
    assert detail(response).startswith("Invalid value for field secrets: This password is too")
    assert "short" not in detail(response).replace("too short", "")


def test_it_creates_groups_and_lists_with_members(api_a, world_a):
    response = create(
        api_a,
        type="list",
        name="news",
        emails=["news@a.example"],
        members=["jane-a", "staff-a"],
        externalMembers=["Friend@Elsewhere.example"],
    )
    assert response.status_code == 200, response.json()
    data = api_a.get("/api/principal/news").json()["data"]
    assert data["members"] == ["jane-a", "staff-a"]
    assert data["externalMembers"] == ["friend@elsewhere.example"]


# --- secrets ------------------------------------------------------------------------------


def test_it_never_returns_a_secret(api_a, world_a, api_root):
    create(api_a, type="individual", name="john", secrets=[STRONG], emails=["john@a.example"])
    john = Principal.objects.get(name="john")
    hash_ = john.password
    responses = [
        api_a.get("/api/principal"),
        api_a.get("/api/principal/john"),
        api_a.get(f"/api/principal/{john.pk}"),
        api_a.get("/api/principal?filter=john"),
        api_a.get("/api/audit"),
        api_root.get("/api/principal?limit=1000"),
        api_root.get("/api/audit"),
        patch(api_a, "john", op("set", "secrets", ["An0ther-long-secret!"])),
    ]
    for response in responses:
        text = response.content.decode()
        assert response.status_code == 200
        for secret in (STRONG, hash_, "An0ther-long-secret!", "argon2", "pbkdf2"):
            assert secret not in text
    for response in responses[:4]:
        data = response.json()["data"]
        for item in data.get("items", [data]):
            assert not {"secrets", "password"} & set(item)
    audit_changes = [e["changes"] for e in responses[4].json()["data"]["items"]]
    assert {"secrets": "<redacted>"}.items() <= audit_changes[0].items()


# --- update -------------------------------------------------------------------------------


def test_it_applies_the_spec_example_patch(api_a, world_a):
    PrincipalEmail.objects.create(principal=world_a.account, address="jd@a.example", position=1)
    response = patch(
        api_a,
        "jane-a",
        op("set", "name", "jane.doe"),
        op("set", "description", "Jane Mary Doe"),
        op("addItem", "emails", "jane.doe@a.example"),
        op("removeItem", "emails", "jd@a.example"),
    )
    assert response.status_code == 200, response.json()
    assert response.json() == {"data": None}
    jane = Principal.objects.get(pk=world_a.account.pk)
    assert (jane.name, jane.description) == ("jane.doe", "Jane Mary Doe")
    assert list(jane.emails.values_list("address", flat=True)) == [
        "jane@a.example",
        "jane.doe@a.example",
    ]


def test_it_applies_all_operations_or_none(api_a, world_a):
    jane = world_a.account
    response = patch(
        api_a,
        "jane-a",
        op("set", "description", "changed"),
        op("addItem", "emails", "new@a.example"),
        op("addItem", "memberOf", "staff-a"),
        op("addItem", "emails", "all@a.example"),  # the mailing list's address
    )
    assert response.status_code == 400
    assert detail(response) == "The email address all@a.example is already in use."
    jane.refresh_from_db()
    assert jane.description == "Jane a"
    assert list(jane.emails.values_list("address", flat=True)) == ["jane@a.example"]
    assert not AuditEvent.objects.filter(action="principal.update").exists()


def test_it_rolls_back_a_batch_with_an_unknown_field(api_a, world_a):
    response = patch(
        api_a, "jane-a", op("set", "description", "changed"), op("set", "colour", "red")
    )
    assert response.status_code == 400
    assert detail(response) == "Unrecognized field: colour"
    world_a.account.refresh_from_db()
    assert world_a.account.description == "Jane a"


def test_it_rolls_back_a_batch_when_the_service_refuses(api_a, world_a):
    response = patch(
        api_a,
        "jane-a",
        op("set", "name", "renamed"),
        op("addItem", "roles", "no-such-role"),
    )
    assert response.status_code == 400
    assert detail(response) == "No such principal: no-such-role"
    assert Principal.objects.filter(name="jane-a").exists()


def test_it_names_an_unknown_action(api_a, world_a):
    response = patch(api_a, "jane-a", op("replace", "description", "x"))
    assert response.status_code == 400
    assert detail(response) == "Unknown action: replace"


def test_it_names_a_patch_value_of_the_wrong_type(api_a, world_a):
    response = patch(api_a, "jane-a", op("set", "quota", "lots"))
    assert response.status_code == 400
    assert detail(response) == "Invalid value for field quota: A valid integer is required."
    response = patch(api_a, "jane-a", op("addItem", "emails", 7))
    assert detail(response) == "Invalid value for field emails: Not a valid string."


def test_it_refuses_to_move_a_principal(api_a, world_a):
    for field, value in (("type", "group"), ("tenant", "tenant-b")):
        response = patch(api_a, "jane-a", op("set", field, value))
        assert response.status_code == 400
        assert detail(response) == f"The field {field} can't be changed."


def test_it_refuses_list_actions_on_scalars(api_a, world_a):
    response = patch(api_a, "jane-a", op("addItem", "quota", 5))
    assert detail(response) == "The action addItem does not apply to the field quota."


def test_it_wants_a_list_of_operations(api_a, world_a):
    response = api_a.patch(
        "/api/principal/jane-a", {"action": "set", "field": "name"}, format="json"
    )
    assert response.status_code == 400
    assert detail(response) == "Expected a list of operations."


def test_it_changes_and_removes_the_password(api_a, world_a):
    assert patch(api_a, "jane-a", op("set", "secrets", STRONG)).status_code == 200
    world_a.account.refresh_from_db()
    assert world_a.account.check_password(STRONG)
    assert patch(api_a, "jane-a", op("removeItem", "secrets")).status_code == 200
    world_a.account.refresh_from_db()
    assert not world_a.account.has_usable_password()


def test_it_reorders_addresses_to_change_the_primary(api_a, world_a):
    PrincipalEmail.objects.create(principal=world_a.account, address="jd@a.example", position=1)
    response = patch(api_a, "jane-a", op("set", "emails", ["jd@a.example", "jane@a.example"]))
    assert response.status_code == 200
    assert api_a.get("/api/principal/jane-a").json()["data"]["emails"] == [
        "jd@a.example",
        "jane@a.example",
    ]


def test_it_edits_members_and_role_holders(api_a, world_a):
    assert patch(api_a, "staff-a", op("set", "members", [])).status_code == 200
    assert not world_a.group.members.exists()
    assert patch(api_a, "helpdesk-a", op("addItem", "members", "jane-a")).status_code == 200
    assert list(world_a.role.role_holders.values_list("name", flat=True)) == ["jane-a"]
    world_a.account._permissions_cache = None
    assert "principal-list" in Principal.objects.get(pk=world_a.account.pk).permissions


def test_it_answers_404_when_patching_a_missing_principal(api_a):
    response = patch(api_a, "nobody", op("set", "description", "x"))
    assert response.status_code == 404
    assert response.json() == NOT_FOUND


def test_it_refuses_to_change_built_in_roles(api_root):
    response = patch(api_root, "user", op("set", "description", "x"))
    assert response.status_code == 400
    assert detail(response) == "The built-in role user can't be changed."


def test_it_needs_principal_update(api_client_for, user_a, world_a):
    response = patch(api_client_for(user_a), "jane-a", op("set", "description", "x"))
    assert response.status_code == 403
    assert response.json()["permission"] == "principal-update"


# --- delete -------------------------------------------------------------------------------


def test_it_deletes_a_principal(api_a, world_a):
    response = api_a.delete("/api/principal/staff-a")
    assert response.status_code == 200
    assert response.json() == {"data": None}
    assert not Principal.objects.filter(name="staff-a").exists()
    event = AuditEvent.objects.get(action="principal.delete")
    assert (event.object_repr, event.tenant_id) == ("staff-a", world_a.tenant.pk)


def test_it_answers_404_when_deleting_a_missing_principal(api_a):
    response = api_a.delete("/api/principal/nobody")
    assert response.status_code == 404
    assert response.json() == NOT_FOUND


def test_it_refuses_to_delete_the_actor(api_a, admin_a):
    response = api_a.delete("/api/principal/admin-a")
    assert response.status_code == 400
    assert detail(response) == "You can't delete your own account."


def test_it_refuses_to_delete_a_domain_in_use(api_a, world_a):
    response = api_a.delete("/api/principal/a.example")
    assert response.status_code == 400
    assert detail(response) == "The domain a.example still has 2 address(es); remove them first."


def test_it_lets_only_a_superadmin_delete_a_tenant_with_everything_in_it(
    api_a, api_root, world_a, world_b
):
    assert api_a.delete("/api/principal/tenant-a").status_code == 404
    assert patch(api_a, "jane-a", op("set", "description", "Jane")).status_code == 200
    history = AuditEvent.objects.filter(tenant__name="tenant-a").count()
    assert history == 1
    response = api_root.delete("/api/principal/tenant-a")
    assert response.status_code == 200
    assert not Principal.objects.filter(name__in=["tenant-a", "jane-a", "admin-a"]).exists()
    assert not PrincipalEmail.objects.filter(address="jane@a.example").exists()
    assert Principal.objects.filter(name="jane-b").exists()
    event = AuditEvent.objects.get(action="principal.delete", object_repr="tenant-a")
    assert event.tenant_id is None
    # The tenant's history outlives it, for superadmins only.
    assert AuditEvent.objects.filter(tenant=None).count() >= history + 1
    assert names_in(api_root.get("/api/audit?limit=1000")) >= {"tenant-a"}
    assert event.changes["deletedPrincipals"] == {
        "domain": 1,
        "group": 1,
        "individual": 2,
        "list": 1,
        "role": 1,
    }


def test_it_describes_the_principal_api_in_the_openapi_schema(anon_api):
    schema = anon_api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    operations = {
        (path, method): spec["operationId"]
        for path, methods in schema["paths"].items()
        for method, spec in methods.items()
        if path.startswith(("/api/principal", "/api/audit"))
    }
    assert operations == {
        ("/api/principal", "get"): "principal_list",
        ("/api/principal", "post"): "principal_create",
        ("/api/principal/{id_or_name}", "get"): "principal_get",
        ("/api/principal/{id_or_name}", "patch"): "principal_update",
        ("/api/principal/{id_or_name}", "delete"): "principal_delete",
        ("/api/audit", "get"): "audit_list",
    }
    create = schema["components"]["schemas"]["PrincipalCreateInput"]["properties"]
    assert create["secrets"]["writeOnly"] is True
    output = schema["components"]["schemas"]["PrincipalOutput"]["properties"]
    assert "secrets" not in output


# --- migrated password hashes ---------------------------------------------------------------

# `openssl passwd -6 -salt saltsalt 'Imported p4ss!'`: a hash as exported by another server.
IMPORTED_SHA512 = (
    "$6$saltsalt$zgvBYNyMxVSHI4.BnwaGU5Rm53NK7cqA3qgRN.tggf8EZBbzCWBfeU0rHgwfwBEmIg."
    "gqGG3nKWDUdACDhdXU/"
)


def test_it_imports_a_sha512_crypt_hash_given_as_the_secret(api_a, world_a, anon_api):
    import base64

    response = create(api_a, type="individual", name="migrated", secrets=[IMPORTED_SHA512])
    assert response.status_code == 200, response.json()
    principal = Principal.objects.get(name="migrated")
    assert principal.password == f"sha512_crypt${IMPORTED_SHA512}"
    assert IMPORTED_SHA512 not in api_a.get("/api/principal/migrated").content.decode()

    credentials = base64.b64encode(b"migrated:Imported p4ss!").decode()
    login = anon_api.get("/api/", HTTP_AUTHORIZATION=f"Basic {credentials}")
    assert login.status_code == 200
    principal.refresh_from_db()
    assert not principal.password.startswith("sha512_crypt$")  # re-hashed at first login


def test_it_refuses_a_malformed_crypt_hash(api_a, world_a):
    response = create(api_a, type="individual", name="broken", secrets=["$6$nosalt"])
    assert response.status_code == 400
    assert detail(response) == "Invalid value for field secrets: the password hash is malformed."
    assert not Principal.objects.filter(name="broken").exists()
