"""What a web worker keeps out of its memory at start-up.

PyJWT imports cryptography whenever it is installed, for the RSA, EC and
EdDSA keys this service never uses (its tokens are HMAC-signed, `HS256`):
about 10 MB in every web worker. cryptography is installed for the second
factors' Fernet (`mfa/crypto.py`), which imports it at its first use. So the
worker imports PyJWT while cryptography looks missing; PyJWT then offers its
HMAC algorithms only, and a later `import cryptography` (a TOTP secret to
decrypt) loads it as usual.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def hidden(module: str) -> Iterator[None]:
    """Inside, `import module` (and of its submodules) raises ModuleNotFoundError, unless it is loaded already."""
    if module in sys.modules:
        yield
        return
    sys.modules[module] = None  # type: ignore[assignment]  # Python's documented "import halted" marker
    try:
        yield
    finally:
        if module in sys.modules and sys.modules[module] is None:
            del sys.modules[module]


def jwt_with_hmac_only() -> None:
    """Import PyJWT without cryptography (see the module docstring); a no-op once PyJWT is imported."""
    with hidden("cryptography"):
        import jwt.algorithms  # noqa: F401
