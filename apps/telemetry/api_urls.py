from django.urls import path

from apps.telemetry.api import SelfCheckStartApi

urlpatterns = [
    path("telemetry/self-check", SelfCheckStartApi.as_view(), name="api-self-check"),
]
