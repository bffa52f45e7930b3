"""The DKIM key form on a domain's page: create, errors beside the field (422), htmx."""

import pytest

from apps.domains.models import DkimKey
from apps.domains.services import dkim_key_create
from mailadmin.core.models import AuditEvent

pytestmark = pytest.mark.django_db
BAD_SELECTOR = (
    "Invalid value for field selector: 'mail_1' is not a DNS label "
    "(1-63 letters, digits or hyphens, not starting or ending with a hyphen)."
)


@pytest.fixture
def console_a(client, admin_a):
    client.force_login(admin_a)
    return client


def test_it_offers_the_form_to_whoever_may_create_keys(console_a, domain_a):
    page = console_a.get(f"/domains/{domain_a.pk}/").content.decode()
    assert 'id="dkim-form"' in page
    assert f'hx-post="/domains/{domain_a.pk}/dkim/"' in page
    assert '<option value="ed25519" selected>Ed25519</option>' in page


def test_it_creates_a_key_and_returns_to_the_domain(console_a, domain_a):
    url = f"/domains/{domain_a.pk}/"
    response = console_a.post(f"{url}dkim/", {"algorithm": "rsa", "selector": "mail1"})
    assert response.status_code == 302 and response["Location"] == url
    key = DkimKey.objects.get(domain=domain_a)
    assert (key.selector, key.algorithm) == ("mail1", "rsa")
    assert AuditEvent.objects.filter(action="dkim.create").exists()
    page = console_a.get(url).content.decode()
    assert "Created DKIM key mail1. Publish its record." in page
    assert "mail1._domainkey.a.example" in page


def test_it_picks_a_dated_selector_when_none_is_given(console_a, domain_a):
    console_a.post(f"/domains/{domain_a.pk}/dkim/", {"algorithm": "ed25519", "selector": ""})
    assert DkimKey.objects.get(domain=domain_a).selector.endswith("e")


def test_it_answers_htmx_with_a_redirect(console_a, domain_a):
    response = console_a.post(
        f"/domains/{domain_a.pk}/dkim/", {"algorithm": "ed25519"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 204
    assert response["HX-Redirect"] == f"/domains/{domain_a.pk}/"


def test_it_answers_a_bad_selector_with_422_and_the_message(console_a, domain_a):
    response = console_a.post(
        f"/domains/{domain_a.pk}/dkim/", {"algorithm": "ed25519", "selector": "mail_1"}
    )
    assert response.status_code == 422
    page = response.content.decode()
    assert "<h1>a.example</h1>" in page  # the whole page again, with the records
    assert 'id="id_selector_error"' in page
    assert BAD_SELECTOR.replace("'", "&#x27;") in page
    assert not DkimKey.objects.exists()


def test_it_answers_htmx_with_the_form_alone(console_a, admin_a, domain_a):
    dkim_key_create(actor=admin_a, domain=domain_a, algorithm="ed25519", selector="mail1")
    response = console_a.post(
        f"/domains/{domain_a.pk}/dkim/",
        {"algorithm": "ed25519", "selector": "MAIL1"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 422
    form = response.content.decode().strip()
    assert form.startswith('<form method="post" id="dkim-form"')
    assert "The selector MAIL1 is already used by a.example." in form
    assert 'value="MAIL1"' in form  # what was typed stays
    assert DkimKey.objects.count() == 1


def test_it_refuses_an_unknown_algorithm(console_a, domain_a):
    response = console_a.post(f"/domains/{domain_a.pk}/dkim/", {"algorithm": "dsa"})
    assert response.status_code == 422
    assert "Select a valid choice. dsa is not one of the available choices." in (
        response.content.decode()
    )


def test_it_needs_dkim_signature_create(client, user_a, domain_a):
    client.force_login(user_a)
    response = client.post(f"/domains/{domain_a.pk}/dkim/", {"algorithm": "ed25519"})
    assert response.status_code == 403
    assert "dkim-signature-create" in response.content.decode()
    assert client.get(f"/domains/{domain_a.pk}/dkim/").status_code == 405
    assert not DkimKey.objects.exists()


def test_it_answers_404_for_another_tenants_domain(client, admin_b, domain_a):
    client.force_login(admin_b)
    response = client.post(f"/domains/{domain_a.pk}/dkim/", {"algorithm": "ed25519"})
    assert response.status_code == 404
    assert not DkimKey.objects.exists()
