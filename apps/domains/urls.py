from django.urls import path

from apps.domains import views

app_name = "domains"

urlpatterns = [
    path("", views.domain_list, name="index"),
    path("check-all/", views.domain_dns_check_all, name="dns-check-all"),
    path("<id:pk>/", views.domain_detail, name="detail"),
    path("<id:pk>/dns-check/", views.domain_dns_check, name="dns-check"),
    path("<id:pk>/dkim/", views.domain_dkim_create, name="dkim-create"),
    path("new/", views.domain_create, name="create"),
    path("<id:pk>/records/", views.domain_dns_records, name="records"),
    path("<id:pk>/dkim/<id:key_id>/rotate/", views.domain_dkim_rotate, name="dkim-rotate"),
    path("<id:pk>/dkim/<id:key_id>/retire/", views.domain_dkim_retire, name="dkim-retire"),
]
