from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import password_validation
from django.contrib.auth.password_validation import MinimumLengthValidator
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import MinLengthValidator
from rest_framework import serializers
from rest_framework_simplejwt import serializers as jwt_serializers

from accounts.models import User
from accounts.tokens import WalletRefreshToken
from wallet_project.fields import StrictCharField, StrictEmailField


def _password_min_length() -> int:
    """The length Django's MinimumLengthValidator asks for, as configured."""
    for validator in settings.AUTH_PASSWORD_VALIDATORS:
        if validator["NAME"].endswith(".MinimumLengthValidator"):
            return int(validator.get("OPTIONS", {}).get("min_length", 8))
    return 1


class NewPasswordField(StrictCharField):
    """A new password, kept as sent (surrounding spaces are part of it); Django's validators judge it.

    Its length is checked here, with the password validator's own words, so that the schema says it
    (`minLength`); the serializer's `validate` runs the other validators (common, numeric, similar).
    """

    def __init__(self, **kwargs: Any) -> None:
        least = _password_min_length()
        too_short = MinimumLengthValidator(least).get_error_message()
        super().__init__(
            write_only=True,
            max_length=128,
            validators=[MinLengthValidator(least, message=too_short)],
            help_text="At least the length above; not entirely digits, not a common password, not too similar "
            "to the email or the name (Django's password validators).",
            **kwargs,
        )


class RegisterInputSerializer(serializers.Serializer):
    email = StrictEmailField(max_length=254)
    password = NewPasswordField()
    name = StrictCharField(max_length=150)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        candidate = User(email=attrs["email"], name=attrs["name"])
        try:
            password_validation.validate_password(attrs["password"], user=candidate)
        except DjangoValidationError as exc:
            raise serializers.ValidationError({"password": list(exc.messages)}) from exc
        return attrs


class UserOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = User
        fields = ["id", "email", "name"]
        read_only_fields = fields


class RefreshInputSerializer(serializers.Serializer):
    refresh = StrictCharField()


class TokenPairOutputSerializer(serializers.Serializer):
    access = serializers.CharField()
    refresh = serializers.CharField()


class PasswordLoginSerializer(jwt_serializers.TokenObtainSerializer):
    """simplejwt's check of an email and password (`user` is set when they are right); it issues no token."""

    token_class = WalletRefreshToken

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # JSON strings, read as sent: a number is no email (400, not the text "0"), and a password keeps its
        # spaces, as registration kept them.
        self.fields[self.username_field] = StrictCharField(write_only=True)
        self.fields["password"] = StrictCharField(write_only=True, style={"input_type": "password"})

    def validate(self, attrs: dict[str, Any]) -> dict[Any, Any]:
        # The email is matched without surrounding whitespace; one that is nothing else reaches no account (401).
        return super().validate({**attrs, self.username_field: attrs[self.username_field].strip()})
