"""Principal API routes (management API: /api/principal...)."""

urlpatterns: list = []
