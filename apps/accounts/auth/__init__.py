"""Authentication: login, lockout, two-factor, app passwords, API keys, OAuth, encryption."""
