from datetime import timedelta

import pytest
from django.utils import timezone

from apps.accounts.auth.housekeeping import auth_housekeeping
from apps.accounts.auth.tokens import token_issue
from apps.accounts.models import AccessToken, LoginThrottle, OAuthCode
from apps.accounts.tasks import auth_housekeeping_task

pytestmark = pytest.mark.django_db


def test_it_deletes_long_expired_oauth_codes_and_tokens_only(admin_a):
    now = timezone.now()
    OAuthCode.objects.create(principal=admin_a, code_hash="old", expires_at=now - timedelta(days=2))
    OAuthCode.objects.create(
        principal=admin_a, code_hash="new", expires_at=now + timedelta(minutes=5)
    )
    old, _ = token_issue(principal=admin_a, kind=AccessToken.Kind.OAUTH, ttl=timedelta(hours=1))
    AccessToken.objects.filter(pk=old.pk).update(expires_at=now - timedelta(days=2))
    live, _ = token_issue(principal=admin_a, kind=AccessToken.Kind.OAUTH, ttl=timedelta(hours=1))
    key, _ = token_issue(principal=admin_a, kind=AccessToken.Kind.API_KEY)
    AccessToken.objects.filter(pk=key.pk).update(expires_at=now - timedelta(days=30))

    assert auth_housekeeping() == {"throttles": 0, "oauth_codes": 1, "oauth_tokens": 1}
    assert list(OAuthCode.objects.values_list("code_hash", flat=True)) == ["new"]
    assert set(AccessToken.objects.values_list("pk", flat=True)) == {live.pk, key.pk}


def test_it_forgets_stale_failed_logins_but_keeps_active_lockouts(admin_a):
    now = timezone.now()
    LoginThrottle.objects.create(
        key="ip:192.0.2.1", failures=3, first_failure_at=now - timedelta(days=1)
    )
    LoginThrottle.objects.create(
        key="account:admin-a|ip:192.0.2.1",
        failures=5,
        locks=3,
        first_failure_at=now - timedelta(days=1),
        locked_until=now + timedelta(minutes=10),
    )
    LoginThrottle.objects.create(
        key="account:admin-a|ip:192.0.2.2",
        failures=5,
        locks=1,
        first_failure_at=now - timedelta(days=3),
        locked_until=now - timedelta(days=2),
    )
    auth_housekeeping_task()
    assert list(LoginThrottle.objects.values_list("key", flat=True)) == [
        "account:admin-a|ip:192.0.2.1"
    ]
