"""The console's session on the API is refused for a request another site started. The spec
makes some actions GETs (purge the global Bayes model, reload the rules), which CSRF does
not guard and which the Lax session cookie accompanies when another site links to them:
a superadmin lured to a hostile page purged the model. Browsers name who started a
request in Sec-Fetch-Site."""

from __future__ import annotations

import pytest
from django.test import Client

from apps.spamfilter import bayes
from apps.spamfilter.message import parse
from mailadmin.api.auth import CROSS_SITE_SESSION

pytestmark = pytest.mark.django_db

PURGE = "/api/store/purge/in-memory/default/bayes-global"
SPAM = parse(b"Subject: cheap pills\r\n\r\ncheap pills, cheap watches")


@pytest.fixture
def learned(settings):
    settings.REDIS_URL = ""  # the model in the test database
    bayes.purge(bayes.GLOBAL)
    bayes.learn(SPAM, spam=True, scope=bayes.GLOBAL)
    yield
    bayes.purge(bayes.GLOBAL)


@pytest.mark.parametrize("site", ["cross-site", "same-site", "Cross-Site"])
def test_a_purge_another_site_started_is_refused_and_the_model_kept(
    client: Client, superadmin, learned, site
):
    client.force_login(superadmin)
    response = client.get(PURGE, HTTP_SEC_FETCH_SITE=site)
    assert response.status_code == 403
    assert response.json()["detail"] == CROSS_SITE_SESSION.format(site=site.lower())
    assert bayes.learned(bayes.GLOBAL) == (1, 0)
    reload = client.get("/api/update/spam-filter", HTTP_SEC_FETCH_SITE=site)
    assert reload.status_code == 403


@pytest.mark.parametrize("site", ["same-origin", "none", None])
def test_the_console_itself_and_an_address_typed_pass(client: Client, superadmin, learned, site):
    client.force_login(superadmin)
    headers = {} if site is None else {"HTTP_SEC_FETCH_SITE": site}
    response = client.get(PURGE, **headers)
    assert response.status_code == 200, response.content
    assert bayes.learned(bayes.GLOBAL) == (0, 0)


def test_credentials_other_than_the_session_are_not_concerned(api_root, anon_api, learned):
    """A cross-site page cannot make the browser send a bearer token; anonymous stays 401."""
    assert anon_api.get(PURGE, HTTP_SEC_FETCH_SITE="cross-site").status_code == 401
    assert api_root.get(PURGE, HTTP_SEC_FETCH_SITE="cross-site").status_code == 200
    assert bayes.learned(bayes.GLOBAL) == (0, 0)
