"""Users in the back office, with their wallets (read-only links)."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.http import HttpRequest

from accounts.admin_login import ThrottledAdminAuthenticationForm
from accounts.models import User
from wallets.models import Wallet

# The admin's login counts failures per (client IP, account) like the API's (wallet_project/throttling.py).
admin.site.login_form = ThrottledAdminAuthenticationForm


class BackOfficeUserCreationForm(AdminUserCreationForm):
    class Meta:
        model = User
        fields = ("email", "name")

    def clean_email(self) -> str:
        email = User.objects.normalize_email(self.cleaned_data["email"]).lower()
        if User.objects.filter(email__iexact=email).exists():
            raise self.instance.unique_error_message(User, ["email"])
        return email


class BackOfficeUserChangeForm(UserChangeForm):
    class Meta:
        model = User
        fields = "__all__"


class WalletInline(admin.TabularInline):
    """The user's wallets, as links; wallets change only through their own admin and the services."""

    model = Wallet
    fields = ("name", "is_frozen", "created_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    form = BackOfficeUserChangeForm
    add_form = BackOfficeUserCreationForm
    inlines = [WalletInline]
    list_display = ("email", "name", "is_staff", "is_superuser", "is_active", "date_joined")
    list_filter = ("is_staff", "is_superuser", "is_active", "groups")
    search_fields = ("email", "name")
    ordering = ("email",)
    readonly_fields = ("id", "last_login", "date_joined")
    filter_horizontal = ("groups", "user_permissions")
    fieldsets = (
        (None, {"fields": ("id", "email", "password")}),
        ("Personal info", {"fields": ("name",)}),
        ("Permissions", {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        ("Important dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        (
            None,
            {
                "classes": ("wide",),
                "fields": ("email", "name", "usable_password", "password1", "password2"),
            },
        ),
    )

    def get_inlines(self, request: HttpRequest, obj: User | None) -> list[type[admin.TabularInline]]:
        # A user being added has no wallets yet.
        return self.inlines if obj is not None else []
