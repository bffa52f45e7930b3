"""'²' is a digit to str.isdigit() but not to int(): every place that read a page number
or an id as `text.isdigit() and int(text)` answered it with a 500. Ids, pages and numbers
from the network take ASCII digits only (mailadmin.converters.digits / is_id)."""

from __future__ import annotations

import pytest

from apps.domains.checks import dmarc_problems
from apps.queue.tls_policy import PolicyError, parse_policy
from mailadmin.api.exceptions import NOT_FOUND_DETAIL

pytestmark = pytest.mark.django_db

SUPERSCRIPT_TWO = "\u00b2"


@pytest.fixture
def domain_a(make_principal, tenant_a):
    return make_principal(tenant=tenant_a, roles=(), name="a.example", type="domain", password="")


@pytest.mark.parametrize(
    "path",
    [
        "/api/principal/{}",
        "/api/domains/{}",
        "/api/dns/records/{}",
        "/api/store/undelete/{}",
        "/api/store/purge/account/{}",
    ],
)
def test_an_id_of_non_ascii_digits_names_nothing(api_root, domain_a, path):
    response = api_root.get(path.format(SUPERSCRIPT_TWO))
    assert (response.status_code, response.json()["detail"]) == (404, NOT_FOUND_DETAIL)


@pytest.mark.parametrize(
    "path",
    [
        "/accounts/?page={}",
        "/domains/?page={}",
        "/queue/?page={}",
        "/spam-filter/quarantine/?page={}",
        "/reports/dmarc/?page={}",
        "/reports/?domain={}",
        "/reports/dmarc/?domain={}",
    ],
)
def test_a_console_page_number_of_non_ascii_digits_shows_the_first_page(
    client, superadmin, domain_a, path
):
    client.force_login(superadmin)
    assert client.get(path.format(SUPERSCRIPT_TWO)).status_code == 200


@pytest.mark.parametrize("bad_id", [SUPERSCRIPT_TWO, "9" * 40])
@pytest.mark.parametrize(
    ("path", "action"), [("/queue/bulk/", "cancel"), ("/spam-filter/quarantine/bulk/", "delete")]
)
def test_a_bulk_action_skips_ids_that_cannot_be_ids(client, superadmin, path, action, bad_id):
    client.force_login(superadmin)
    response = client.post(path, {"ids": [bad_id], "action": action})
    assert response.status_code == 302


@pytest.mark.parametrize(
    ("size", "detail"),
    [
        (SUPERSCRIPT_TWO, "Invalid format for size, input must be an integer"),
        ("--5", "Invalid format for size, input must be an integer"),
        ("+-5", "Invalid format for size, input must be an integer"),
        ("9" * 5000, "Invalid value for size, input must be a positive integer of at most "
                     "8796093022207"),
    ],
)  # fmt: skip
def test_a_mailbox_size_of_odd_digits_is_refused_by_name(api_a, tenant_a, domain_a, size, detail):
    url = f"/api/customers/{tenant_a.pk}/domains/a.example/mailboxes/bo"
    body = {"displayName": "Bo", "password": "Secret123!@#", "size": size}
    response = api_a.post(url, body, format="json")
    assert (response.status_code, response.json()["detail"]) == (400, detail)


def test_a_dmarc_pct_of_odd_digits_is_a_problem_not_a_crash():
    for pct in (SUPERSCRIPT_TWO, "1" * 5000):
        problems, _ = dmarc_problems(f"v=DMARC1; p=none; pct={pct}")
        assert problems == [f"pct={pct} is not a number from 0 to 100"]


def test_an_mta_sts_max_age_of_odd_digits_is_an_invalid_policy():
    text = f"version: STSv1\nmode: enforce\nmx: mx.example\nmax_age: {SUPERSCRIPT_TWO}\n"
    with pytest.raises(PolicyError) as caught:
        parse_policy(text)
    assert str(caught.value) == "max_age is not a number up to 31557600"
