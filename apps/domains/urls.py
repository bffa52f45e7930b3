from django.urls import path

from apps.domains import views

app_name = "domains"

urlpatterns = [
    path("", views.domain_list, name="index"),
    path("<int:pk>/", views.domain_detail, name="detail"),
    path("<int:pk>/dns-check/", views.domain_dns_check, name="dns-check"),
    path("<int:pk>/dkim/", views.domain_dkim_create, name="dkim-create"),
]
