"""Rules the services enforce for every caller (API, console, tasks, commands)."""

import pytest

from apps.accounts.models import Principal
from apps.accounts.principals.services import principal_create, principal_delete, principal_update
from mailadmin.errors import NotFound, PermissionDenied, ServiceError

pytestmark = pytest.mark.django_db


def refused(call, **kwargs) -> str:
    with pytest.raises(ServiceError) as error:
        call(**kwargs)
    return error.value.message


def set_op(field, value):
    return [{"action": "set", "field": field, "value": value}]


@pytest.fixture
def ops_role(superadmin, world_a):
    """A role in tenant A carrying a server-wide permission its admin doesn't hold."""
    return principal_create(
        actor=superadmin,
        data={
            "type": "role",
            "name": "ops-a",
            "tenant": "tenant-a",
            "enabledPermissions": ["logs-view", "principal-list"],
        },
    )


def test_it_refuses_to_hand_out_a_role_carrying_more_than_the_actor_holds(
    admin_a, world_a, ops_role
):
    message = refused(
        principal_update,
        actor=admin_a,
        principal=world_a.account,
        operations=[{"action": "addItem", "field": "roles", "value": "ops-a"}],
    )
    assert message == (
        "You can't grant the role 'ops-a' because it carries the permission 'logs-view' "
        "you don't hold."
    )
    message = refused(
        principal_update,
        actor=admin_a,
        principal=ops_role,
        operations=[{"action": "addItem", "field": "members", "value": "jane-a"}],
    )
    assert message.startswith("You can't grant the role 'ops-a'")
    assert not ops_role.role_holders.exists()


def test_it_lets_an_actor_keep_what_it_cannot_grant(admin_a, world_a, ops_role, superadmin):
    principal_update(
        actor=superadmin,
        principal=world_a.account,
        operations=[{"action": "addItem", "field": "roles", "value": "ops-a"}],
    )
    account = Principal.objects.get(pk=world_a.account.pk)
    principal_update(actor=admin_a, principal=account, operations=set_op("description", "ok"))
    assert sorted(account.roles.values_list("name", flat=True)) == ["ops-a", "user"]
    # Server-wide permissions never take effect inside a tenant.
    account = Principal.objects.get(pk=world_a.account.pk)
    assert "logs-view" not in account.permissions and "principal-list" in account.permissions


def test_it_keeps_superadmins_superadmins(superadmin):
    message = refused(
        principal_update,
        actor=superadmin,
        principal=superadmin,
        operations=[{"action": "removeItem", "field": "roles", "value": "admin"}],
    )
    assert message == "A superadmin must keep the role admin."


def test_it_refuses_self_membership(admin_a, world_a):
    message = refused(
        principal_update,
        actor=admin_a,
        principal=world_a.group,
        operations=[{"action": "addItem", "field": "memberOf", "value": "staff-a"}],
    )
    assert message == "A principal can't be a member of itself."


def test_it_treats_foreign_principals_as_missing(admin_b, world_a, world_b):
    with pytest.raises(NotFound):
        principal_update(actor=admin_b, principal=world_a.account, operations=[])
    with pytest.raises(NotFound):
        principal_delete(actor=admin_b, principal=world_a.group)
    assert Principal.objects.filter(pk=world_a.group.pk).exists()


def test_it_checks_permissions_itself(user_a, world_a):
    with pytest.raises(PermissionDenied) as error:
        principal_create(actor=user_a, data={"type": "group", "name": "g"})
    assert error.value.permission == "principal-create"
    with pytest.raises(PermissionDenied):
        principal_delete(actor=user_a, principal=world_a.group)


def test_it_refuses_to_delete_built_in_roles(superadmin):
    role = Principal.objects.get(name="user", tenant=None)
    assert refused(principal_delete, actor=superadmin, principal=role) == (
        "The built-in role user can't be deleted."
    )


def test_it_keeps_addresses_unique_whatever_their_case_or_script(admin_a, world_a):
    principal_create(actor=admin_a, data={"type": "domain", "name": "bücher.example"})
    principal_create(
        actor=admin_a,
        data={"type": "individual", "name": "leser", "emails": ["leser@xn--bcher-kva.example"]},
    )
    message = refused(
        principal_create,
        actor=admin_a,
        data={"type": "individual", "name": "other", "emails": ["LESER@Bücher.example"]},
    )
    assert message == "The email address leser@bücher.example is already in use."


def test_it_stores_domain_names_normalized(admin_a, world_a):
    domain = principal_create(actor=admin_a, data={"type": "domain", "name": "Bücher.Example."})
    assert domain.name == "xn--bcher-kva.example"
    message = refused(
        principal_create, actor=admin_a, data={"type": "domain", "name": "not a domain"}
    )
    assert message == "'not a domain' is not a valid domain name."


def test_it_refuses_to_rename_into_a_taken_name_case_insensitively(admin_a, world_a):
    message = refused(
        principal_update,
        actor=admin_a,
        principal=world_a.group,
        operations=set_op("name", "ALL-A"),
    )
    assert message == "The name 'ALL-A' is already taken."


def test_it_refuses_to_rename_a_domain_in_use(admin_a, world_a):
    message = refused(
        principal_update,
        actor=admin_a,
        principal=world_a.domain,
        operations=set_op("name", "c.example"),
    )
    assert message == "The domain a.example still has 2 address(es); remove them first."
    unused = principal_create(actor=admin_a, data={"type": "domain", "name": "d.example"})
    principal_update(actor=admin_a, principal=unused, operations=set_op("name", "E.example"))
    assert Principal.objects.get(pk=unused.pk).name == "e.example"
