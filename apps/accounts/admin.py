from django.contrib import admin

from apps.accounts.models import AccessToken, Principal


@admin.register(Principal)
class PrincipalAdmin(admin.ModelAdmin):
    list_display = ["name", "type", "tenant", "is_active", "is_superuser", "created_at"]
    list_filter = ["type", "is_active", "is_superuser"]
    search_fields = ["name", "description"]
    list_select_related = ["tenant"]
    raw_id_fields = ["tenant"]
    filter_horizontal = ["roles", "member_of"]
    exclude = ["password"]
    show_full_result_count = False


@admin.register(AccessToken)
class AccessTokenAdmin(admin.ModelAdmin):
    list_display = [
        "principal",
        "kind",
        "name",
        "created_at",
        "expires_at",
        "revoked_at",
        "last_used_at",
    ]
    list_filter = ["kind"]
    list_select_related = ["principal"]
    raw_id_fields = ["principal"]
    exclude = ["token_hash"]
    show_full_result_count = False
