from django.urls import path

from apps.config import views

app_name = "config"

urlpatterns = [
    path("", views.settings_index, name="index"),
    path("save/", views.setting_save, name="save"),
    path("delete/", views.setting_delete, name="delete"),
]
