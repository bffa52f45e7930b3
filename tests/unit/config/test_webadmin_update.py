"""Update WebAdmin: the console ships with mailadmin, so the update re-collects its static
files into STATIC_ROOT and answers {"data": null}; superadmins only."""

from __future__ import annotations

import pytest

from mailadmin.core.models import AuditEvent

pytestmark = pytest.mark.django_db


def test_it_collects_the_shipped_static_files(api_root, settings, tmp_path):
    settings.STATIC_ROOT = tmp_path / "static"
    settings.STATIC_ROOT.mkdir()
    response = api_root.get("/api/update/webadmin")
    assert response.status_code == 200
    assert response.json() == {"data": None}
    assert (tmp_path / "static" / "favicon.svg").is_file()
    assert (tmp_path / "static" / "css").is_dir()
    event = AuditEvent.objects.get(action="webadmin.update")
    assert "copied" in event.changes["collectstatic"]


def test_it_is_for_superadmins_only(api_a, anon_api):
    response = api_a.get("/api/update/webadmin")
    assert response.status_code == 403
    assert response.json()["detail"] == (
        "You do not have the permission 'webadmin-update' needed for this."
    )
    assert anon_api.get("/api/update/webadmin").status_code == 401
