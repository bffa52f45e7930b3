from django.urls import path

from apps.domains import views

app_name = "domains"

urlpatterns = [
    path("", views.domain_list, name="index"),
    path("check-all/", views.domain_dns_check_all, name="dns-check-all"),
    path("<id:pk>/", views.domain_detail, name="detail"),
    path("<id:pk>/dns-check/", views.domain_dns_check, name="dns-check"),
    path("<id:pk>/dkim/", views.domain_dkim_create, name="dkim-create"),
]
