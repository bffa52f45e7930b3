"""The Django admin names its models in plain English (no "Encryption settingss")."""

import pytest

pytestmark = pytest.mark.django_db


def test_it_labels_the_models_on_the_admin_index(client, superadmin):
    client.force_login(superadmin)
    page = client.get("/admin/").content.decode()
    for label in ("Encryption settings", "OAuth codes", "Email addresses", "DKIM keys"):
        assert f">{label}<" in page, label
    for wrong in ("settingss", "O auth", "Dkim", "Dns check"):
        assert wrong not in page, wrong


def test_it_labels_one_object_in_the_singular(client, superadmin):
    client.force_login(superadmin)
    page = client.get("/admin/accounts/oauthcode/").content.decode()
    assert "Select OAuth code to" in page
