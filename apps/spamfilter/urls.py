from django.urls import path

from apps.spamfilter import views

app_name = "spamfilter"

urlpatterns = [
    path("", views.classify, name="index"),
]
