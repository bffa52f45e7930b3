"""Own-account pages: two-factor authentication, app passwords, API keys."""

app_name = "account"

urlpatterns: list = []
