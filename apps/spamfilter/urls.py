from django.urls import path

from apps.spamfilter import rules_views, views

app_name = "spamfilter"

urlpatterns = [
    path("", views.classify, name="index"),
    path("rules/", rules_views.rule_list, name="rules"),
    path("rules/<str:tag>/", rules_views.rule_edit, name="rule-edit"),
    path("rules/<str:tag>/reset/", rules_views.rule_reset, name="rule-reset"),
]
