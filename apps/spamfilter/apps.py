from django.apps import AppConfig


class SpamfilterConfig(AppConfig):
    name = "apps.spamfilter"
    label = "spamfilter"

    def ready(self) -> None:
        from apps.config import keys
        from apps.spamfilter import rules, thresholds

        # Rule overrides in the settings store are checked like the rules file's values.
        keys.register(r"^spam-filter\.rule\.", rules.check_override)
        # Thresholds: each a number, and together in order (spam <= ... <= discard).
        keys.register(r"^spam-filter\.threshold\.", thresholds.check_value)
        keys.register_group(thresholds.PREFIX, thresholds.check_order)
