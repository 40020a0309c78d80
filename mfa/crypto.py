"""The TOTP secrets, encrypted at rest with the keys of `MFA_ENCRYPTION_KEY` (cryptography's Fernet).

Fernet is AES-128-CBC with an HMAC-SHA256 over the ciphertext: a secret read
from a database dump is useless without the key, and one altered in the table
fails to decrypt rather than yielding another secret. The key lives in the
environment, never in the database. With several keys (`MultiFernet`) the
first encrypts and each decrypts, so a key can be rotated
(`manage.py rotate_mfa_key`).
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

if TYPE_CHECKING:
    from cryptography.fernet import MultiFernet


@functools.cache
def _keys() -> MultiFernet:
    # Imported at the first use, not with the module: cryptography costs every web worker megabytes, and
    # only the users with a second factor need it (docs/PERFORMANCE.md, "Worker memory").
    from cryptography.fernet import Fernet, MultiFernet

    return MultiFernet([Fernet(key) for key in settings.MFA_ENCRYPTION_KEYS])


@receiver(setting_changed)
def _forget_keys(*, setting: str, **kwargs: object) -> None:
    if setting == "MFA_ENCRYPTION_KEYS":
        _keys.cache_clear()


def encrypt(secret: bytes) -> str:
    """The secret as stored: a Fernet token (URL-safe base64 text) under the first key."""
    return _keys().encrypt(secret).decode("ascii")


def decrypt(stored: str) -> bytes:
    """The secret back; raises cryptography's InvalidToken for a value no key made, or one altered."""
    return _keys().decrypt(stored.encode("ascii"))


def reencrypt(stored: str) -> str:
    """The secret under the first key (a value already under it comes back re-encrypted, which is harmless)."""
    return _keys().rotate(stored.encode("ascii")).decode("ascii")
