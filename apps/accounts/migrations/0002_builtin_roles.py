from django.db import migrations

BUILTIN = {
    "admin": "Everything, on every tenant",
    "tenant-admin": "Everything inside its own tenant",
    "user": "Its own account only",
}


def create_roles(apps, schema_editor):
    Principal = apps.get_model("accounts", "Principal")
    for name, description in BUILTIN.items():
        Principal.objects.get_or_create(
            name=name,
            defaults={"type": "role", "description": description, "password": "!"},
        )


def remove_roles(apps, schema_editor):
    Principal = apps.get_model("accounts", "Principal")
    Principal.objects.filter(name__in=BUILTIN, type="role", tenant=None).delete()


class Migration(migrations.Migration):
    dependencies = [("accounts", "0001_initial")]
    operations = [migrations.RunPython(create_roles, remove_roles)]
