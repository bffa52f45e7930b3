from django.urls import path

from apps.accounts.principals import views

app_name = "accounts"

urlpatterns = [
    path("", views.principal_list, name="index"),
    path("new/", views.principal_create, name="create"),
    path("audit/", views.audit_log, name="audit"),
    path("<id:pk>/", views.principal_detail, name="detail"),
    path("<id:pk>/edit/", views.principal_edit, name="edit"),
    path("<id:pk>/memberships/", views.principal_memberships, name="memberships"),
    path("<id:pk>/permissions/", views.principal_permissions, name="permissions"),
    path("<id:pk>/delete/", views.principal_delete, name="delete"),
]
