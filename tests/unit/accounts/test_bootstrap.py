import pytest
from django.core.management import call_command

from apps.accounts.models import Principal
from mailadmin.core.models import AuditEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def var_dir(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    return tmp_path


def test_it_creates_a_superadmin_and_a_demo_tenant_admin_and_prints_their_logins(var_dir, capsys):
    call_command("bootstrap")
    out = capsys.readouterr().out
    root_password = (var_dir / "superadmin.password").read_text()
    demo_password = (var_dir / "demo-admin.password").read_text()
    assert f"as superadmin / {root_password} (all tenants)" in out
    assert f"as demo-admin / {demo_password} (demo)" in out
    root = Principal.objects.get(name="superadmin")
    demo = Principal.objects.get(name="demo-admin")
    assert root.is_superuser and root.tenant_id is None
    assert demo.tenant.name == "demo" and not demo.is_superuser
    assert [r.name for r in demo.roles.all()] == ["tenant-admin"]
    assert root.check_password(root_password) and demo.check_password(demo_password)
    assert (var_dir / "demo-admin.password").stat().st_mode & 0o777 == 0o600
    created = AuditEvent.objects.filter(action="principal.create", interface="command")
    assert sorted(created.values_list("object_repr", flat=True)) == [
        "demo",
        "demo-admin",
        "superadmin",
    ]


def test_it_is_safe_to_run_again(var_dir, capsys):
    call_command("bootstrap")
    first = capsys.readouterr().out
    call_command("bootstrap")
    assert capsys.readouterr().out == first
    assert Principal.objects.filter(name__in=["superadmin", "demo-admin", "demo"]).count() == 3


def test_it_stops_printing_a_password_that_was_changed(var_dir, capsys):
    call_command("bootstrap")
    capsys.readouterr()
    demo = Principal.objects.get(name="demo-admin")
    demo.set_password("changed by its owner")
    demo.save()
    call_command("bootstrap")
    out = capsys.readouterr().out
    assert "demo-admin" not in out
    assert "superadmin" in out
