from django.apps import AppConfig


class SpamfilterConfig(AppConfig):
    name = "apps.spamfilter"
    label = "spamfilter"

    def ready(self) -> None:
        from apps.config import keys
        from apps.spamfilter import rules

        # Rule overrides in the settings store are checked like the rules file's values.
        keys.register(r"^spam-filter\.rule\.", rules.check_override)
