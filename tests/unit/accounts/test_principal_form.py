"""The account form: quota as a number and a unit (stored as bytes), addresses as a local
part and one of the tenant's domains (several rows)."""

import re
from decimal import Decimal

import pytest

from apps.accounts.models import Principal, PrincipalEmail
from apps.accounts.principals.forms import AddressesField, QuotaField, QuotaWidget

GiB = 1024**3
MiB = 1024**2


def html(response) -> str:
    return response.content.decode()


# --- quota -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "unit", "stored"),
    [
        ("2", "GB", 2 * GiB),
        ("1.5", "GB", 1536 * MiB),
        ("500", "MB", 500 * MiB),
        ("1", "TB", 1024 * GiB),
        ("0", "GB", 0),
        ("", "GB", None),
        ("0.0000001", "MB", 0),  # rounds to whole bytes
    ],
)
def test_it_cleans_a_quota_to_bytes(number, unit, stored):
    assert QuotaField().clean([number, unit]) == stored


@pytest.mark.parametrize(
    ("number", "unit", "message"),
    [
        ("-1", "GB", "Ensure this value is greater than or equal to 0."),
        ("lots", "GB", "Enter a number."),
        ("NaN", "GB", "Enter a number."),
        ("9999999999", "TB", "The quota can be at most 8,388,607 TB."),
        ("2", "PB", "Select a valid choice. PB is not one of the available choices."),
    ],
)
def test_it_refuses_a_bad_quota(number, unit, message):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as error:
        QuotaField().clean([number, unit])
    assert error.value.messages == [message]


@pytest.mark.parametrize(
    ("stored", "shown"),
    [
        (0, [None, "GB"]),
        (2 * GiB, [2, "GB"]),
        (1536 * MiB, [1536, "MB"]),
        (3 * 1024 * GiB, [3, "TB"]),
        (1000, ["0.00095367431640625", "MB"]),
    ],
)
def test_it_shows_stored_bytes_in_the_largest_whole_unit(stored, shown):
    assert QuotaWidget().decompress(stored) == shown


def test_it_round_trips_a_quota_that_is_no_whole_number_of_megabytes():
    number, unit = QuotaWidget().decompress(10**9 + 7)
    assert QuotaField().clean([number, unit]) == 10**9 + 7
    assert Decimal(number) * MiB == 10**9 + 7


# --- addresses -------------------------------------------------------------------------


def test_it_builds_addresses_from_rows_and_skips_empty_ones():
    field = AddressesField()
    rows = [("John", "a.example"), ("", "a.example"), (" jd ", "b.example")]
    assert field.clean(rows) == ["John@a.example", "jd@b.example"]


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([("john@a.example", "a.example")], "Enter only the part before the @ in"),
        ([("john", "")], "Pick a domain for 'john'."),
    ],
)
def test_it_refuses_a_row_it_cannot_build(rows, message):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as error:
        AddressesField().clean(rows)
    assert error.value.messages[0].startswith(message)


@pytest.mark.django_db
class TestThePage:
    def test_it_creates_an_account_with_a_quota_in_gb_and_two_addresses(self, console_a, world_a):
        response = console_a.post(
            "/accounts/new/?type=individual",
            {
                "name": "john",
                "quota_0": "2",
                "quota_1": "GB",
                "emails_local": ["john", "", "j.doe"],
                "emails_domain": ["a.example", "a.example", "a.example"],
            },
        )
        john = Principal.objects.get(name="john")
        assert response.status_code == 302 and response["Location"] == f"/accounts/{john.pk}/"
        assert john.quota == 2 * GiB
        assert list(john.emails.values_list("address", flat=True)) == [
            "john@a.example",
            "j.doe@a.example",
        ]
        assert "2.0\xa0GB" in html(console_a.get(response["Location"]))

    def test_it_offers_only_the_tenants_own_domains(self, console_a, world_a, world_b):
        page = html(console_a.get("/accounts/new/?type=individual"))
        assert re.findall(r'<option value="([^"]+)"', page.split('id="id_emails"')[1]) == [
            "a.example"
        ]
        assert "<optgroup" not in page.split('id="id_emails"')[1]

    def test_it_refuses_another_tenants_domain(self, console_a, world_a, world_b):
        response = console_a.post(
            "/accounts/new/?type=individual",
            {"name": "john", "emails_local": "john", "emails_domain": "b.example"},
        )
        assert response.status_code == 422
        assert "The domain b.example is not a domain of this tenant." in html(response)
        assert not Principal.objects.filter(name="john").exists()

    def test_it_groups_the_domains_by_tenant_for_a_superadmin(
        self, client, superadmin, world_a, world_b
    ):
        client.force_login(superadmin)
        picker = html(client.get("/accounts/new/?type=individual")).split('id="id_emails"')[1]
        assert '<optgroup label="tenant-a">' in picker and '<optgroup label="tenant-b">' in picker
        assert picker.index("a.example") < picker.index('<optgroup label="tenant-b">')

    def test_it_shows_the_current_addresses_and_quota_on_the_edit_form(
        self, console_a, world_a, make_principal
    ):
        other = make_principal(
            tenant=world_a.tenant, roles=(), name="a2.example", type="domain", password=""
        )
        PrincipalEmail.objects.create(principal=world_a.account, address="j@a2.example", position=1)
        Principal.objects.filter(pk=world_a.account.pk).update(quota=3 * GiB)
        page = html(console_a.get(f"/accounts/{world_a.account.pk}/edit/"))
        assert re.findall(r'name="emails_local" value="([^"]*)"', page) == ["jane", "j", ""]
        picker = page.split('id="id_emails"')[1]
        selected = re.findall(r'<option value="([^"]+)" selected>', picker)
        assert selected == ["a.example", other.name, other.name]  # a new row: the last domain
        assert 'name="quota_0" value="3"' in page
        assert '<option value="GB" selected>GB</option>' in page

    def test_it_shows_an_international_domain_in_unicode(self, console_a, world_a, make_principal):
        make_principal(
            tenant=world_a.tenant,
            roles=(),
            name="xn--bcher-kva.example",
            type="domain",
            password="",
        )
        page = html(console_a.get("/accounts/new/?type=group"))
        assert '<option value="xn--bcher-kva.example">bücher.example</option>' in page
        response = console_a.post(
            "/accounts/new/?type=group",
            {"name": "books", "emails_local": "Info", "emails_domain": "xn--bcher-kva.example"},
        )
        assert response.status_code == 302
        books = Principal.objects.get(name="books")
        assert [e.address for e in books.emails.all()] == ["info@xn--bcher-kva.example"]

    def test_it_says_so_when_there_is_no_domain_to_pick(self, console_a):
        page = html(console_a.get("/accounts/new/?type=individual"))
        assert "No domains to pick from yet" in page and 'name="emails_local"' not in page

    def test_it_takes_a_tenant_quota_in_tb(self, client, superadmin):
        client.force_login(superadmin)
        response = client.post(
            "/accounts/new/?type=tenant", {"name": "big", "quota_0": "2", "quota_1": "TB"}
        )
        assert response.status_code == 302
        assert Principal.objects.get(name="big").quota == 2 * 1024**4

    def test_it_shows_a_quota_error_beside_the_field(self, console_a, world_a):
        response = console_a.post(
            "/accounts/new/?type=individual", {"name": "john", "quota_0": "-5", "quota_1": "GB"}
        )
        assert response.status_code == 422
        page = html(response)
        assert 'id="id_quota_error"' in page
        assert "Ensure this value is greater than or equal to 0." in page
