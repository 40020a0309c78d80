from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class MfaConfig(AppConfig):
    name = "mfa"
    verbose_name = "Two-factor authentication"
    default = True  # this module holds two configs: this one is the app's own
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from mfa import admin_site  # noqa: F401 - connects the admin's password step to its second step


class BackOfficeAdminConfig(admin_apps.AdminConfig):
    """Django's admin, whose default site (`admin.site`) asks staff for a second factor after the password."""

    default = False
    default_site = "mfa.admin_site.BackOfficeAdminSite"
