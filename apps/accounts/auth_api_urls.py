"""Authentication API routes: /api/oauth, /api/account/auth, /api/account/crypto."""

urlpatterns: list = []
