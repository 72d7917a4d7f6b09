from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "dalgo_api.accounts"
    label = "accounts"
    verbose_name = "Users, tokens, roles and permissions"

    def ready(self) -> None:
        from django.db.models.signals import m2m_changed, post_save

        from dalgo_api.accounts.auth import forget_role_permissions
        from dalgo_api.accounts.models import Role

        m2m_changed.connect(forget_role_permissions, sender=Role.permissions.through)
        post_save.connect(forget_role_permissions, sender=Role)
