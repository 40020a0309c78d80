from django.urls import path

from mfa import views

urlpatterns = [
    # The login's password step lives here, not in accounts: it answers a second step when MFA is on.
    path("auth/token/", views.TokenObtainView.as_view(), name="auth-token"),
    path("auth/token/mfa/", views.MfaTokenView.as_view(), name="auth-token-mfa"),
    path("auth/mfa/", views.MfaStatusView.as_view(), name="auth-mfa"),
    path("auth/mfa/totp/", views.TotpView.as_view(), name="auth-mfa-totp"),
    path("auth/mfa/totp/confirm/", views.TotpConfirmView.as_view(), name="auth-mfa-totp-confirm"),
    path("auth/mfa/recovery-codes/", views.RecoveryCodesView.as_view(), name="auth-mfa-recovery-codes"),
]
