"""Users in the back office, with their wallets (read-only links)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.db.models import QuerySet
from django.http import HttpRequest
from rest_framework_simplejwt.token_blacklist.admin import OutstandingTokenAdmin
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from accounts.admin_login import ThrottledAdminAuthenticationForm
from accounts.models import User
from accounts.services import user_refresh_tokens_revoke
from wallet_project.admin_helpers import ReadOnlyAdminMixin
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


class WalletInline(ReadOnlyAdminMixin, admin.TabularInline):
    """The user's wallets, as links; wallets change only through their own admin and the services."""

    model = Wallet
    fields = ("name", "is_frozen", "created_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True


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

    @admin.action(
        description="Revoke the selected users' refresh tokens (log out their API clients)", permissions=["change"]
    )
    def revoke_refresh_tokens(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        revoked = sum(user_refresh_tokens_revoke(user=user) for user in queryset)
        self.message_user(request, f"{revoked} refresh token(s) revoked.", messages.SUCCESS)

    actions = ["revoke_refresh_tokens"]


class RefreshTokenAdmin(OutstandingTokenAdmin):
    """simplejwt's outstanding tokens without their text: a refresh token shown is a session handed over.

    Staff see whose token it is, when it was issued and expires, and whether
    it is blacklisted, and can blacklist tokens; nothing here edits a token.
    """

    list_display = ("jti", "user", "created_at", "expires_at", "blacklisted")
    list_filter = ("expires_at",)
    fields = ("jti", "user", "created_at", "expires_at")
    actions = ["blacklist_tokens"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[OutstandingToken]:
        return super().get_queryset(request).select_related("blacklistedtoken").defer("token")

    def get_readonly_fields(self, request: HttpRequest, obj: object = None) -> tuple[str, ...]:
        return self.fields

    @admin.display(boolean=True, description="blacklisted")
    def blacklisted(self, token: OutstandingToken) -> bool:
        return hasattr(token, "blacklistedtoken")

    def has_blacklist_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("token_blacklist.add_blacklistedtoken")

    @admin.action(description="Blacklist the selected refresh tokens", permissions=["blacklist"])
    def blacklist_tokens(self, request: HttpRequest, queryset: QuerySet[OutstandingToken]) -> None:
        created = BlacklistedToken.objects.bulk_create(
            [BlacklistedToken(token=token) for token in queryset.filter(blacklistedtoken__isnull=True)],
            ignore_conflicts=True,
        )
        self.message_user(request, f"{len(created)} refresh token(s) blacklisted.", messages.SUCCESS)


admin.site.unregister(OutstandingToken)
admin.site.register(OutstandingToken, RefreshTokenAdmin)
