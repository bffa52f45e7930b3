"""Every page links the vendored SVG favicon (no request for a missing /favicon.ico)."""

from xml.etree import ElementTree

import pytest
from django.conf import settings

pytestmark = pytest.mark.django_db


def test_it_links_the_favicon_from_the_base_layout(client):
    page = client.get("/login/").content.decode()
    assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in page


def test_it_ships_a_well_formed_svg():
    path = settings.BASE_DIR / "static" / "favicon.svg"
    root = ElementTree.parse(path).getroot()  # noqa: S314 - our own file, not input
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert root.get("viewBox") == "0 0 32 32"
