import pytest
from django.core.exceptions import ImproperlyConfigured

from mailadmin.env import env_bool, env_nameservers, env_url, parse_host_port


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("127.0.0.1:2525", ("127.0.0.1", 2525)),
        ("localhost", ("localhost", 25)),
        ("[::1]:5870", ("::1", 5870)),
        ("[::1]", ("::1", 25)),
    ],
)
def test_it_parses_binds(value, expected):
    assert parse_host_port(value, name="X", default_port=25) == expected


@pytest.mark.parametrize("value", ["127.0.0.1:99999", "127.0.0.1:smtp", ":25"])
def test_it_rejects_bad_binds_loudly(value):
    with pytest.raises(ImproperlyConfigured):
        parse_host_port(value, name="MAILADMIN_SMTP_BIND", default_port=25)


def test_it_reads_nameservers(monkeypatch):
    monkeypatch.setenv("MAILADMIN_DNS_NAMESERVERS", "127.0.0.1:5353, ::1, 10.0.0.1")
    assert env_nameservers("MAILADMIN_DNS_NAMESERVERS") == [
        ("127.0.0.1", 5353),
        ("::1", 53),
        ("10.0.0.1", 53),
    ]


def test_it_reads_no_nameservers_as_the_system_resolver(monkeypatch):
    monkeypatch.setenv("MAILADMIN_DNS_NAMESERVERS", "")
    assert env_nameservers("MAILADMIN_DNS_NAMESERVERS") == []


def test_it_rejects_a_bool_that_is_not_one(monkeypatch):
    monkeypatch.setenv("MAILADMIN_DEBUG", "maybe")
    with pytest.raises(ImproperlyConfigured, match="MAILADMIN_DEBUG must be true or false"):
        env_bool("MAILADMIN_DEBUG")


def test_it_reads_secrets_from_files(monkeypatch, tmp_path):
    from mailadmin.env import env_str

    secret = tmp_path / "key"
    secret.write_text("s3cret\n")
    monkeypatch.setenv("SECRET_KEY_FILE", str(secret))
    assert env_str("SECRET_KEY") == "s3cret"


def test_it_reads_a_base_url_without_its_trailing_slash(monkeypatch):
    monkeypatch.setenv("MAILADMIN_CONSOLE_URL", "https://mail.example.org/admin/")
    assert env_url("MAILADMIN_CONSOLE_URL", "x") == "https://mail.example.org/admin"
    monkeypatch.delenv("MAILADMIN_CONSOLE_URL")
    assert env_url("MAILADMIN_CONSOLE_URL", "http://127.0.0.1:8000") == "http://127.0.0.1:8000"


@pytest.mark.parametrize(
    "value", ["mail.example.org", "ftp://mail.example.org", "https://", "http://a/?q=1"]
)
def test_it_rejects_a_url_that_is_not_one_loudly(monkeypatch, value):
    monkeypatch.setenv("MAILADMIN_CONSOLE_URL", value)
    with pytest.raises(ImproperlyConfigured, match="MAILADMIN_CONSOLE_URL must be an http"):
        env_url("MAILADMIN_CONSOLE_URL", "http://127.0.0.1:8000")
