from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "dalgo_api.accounts"
    label = "accounts"
    verbose_name = "Users, tokens, roles and permissions"

    def ready(self) -> None:
        from django.db.models.signals import m2m_changed, post_delete, post_save

        from dalgo_api.accounts.auth import forget_authentications
        from dalgo_api.accounts.models import ApiToken, Role, User
        from dalgo_api.orgs.models import Org, OrgUser

        # a remembered caller (auth._remembered) and a role's permissions are forgotten on any change of
        # what they were read from
        m2m_changed.connect(forget_authentications, sender=Role.permissions.through)
        for model in (ApiToken, User, OrgUser, Org, Role):
            post_save.connect(forget_authentications, sender=model)
            post_delete.connect(forget_authentications, sender=model)
