"""What a web worker keeps out of its memory at start-up.

PyJWT imports cryptography whenever it is installed, for the RSA, EC and
EdDSA keys this service never uses (its tokens are HMAC-signed, `HS256`):
about 10 MB in every web worker. cryptography is installed for the second
factors' Fernet (`mfa/crypto.py`), which imports it at its first use. So the
worker imports PyJWT while cryptography looks missing; PyJWT then offers its
HMAC algorithms only, and a later `import cryptography` (a TOTP secret to
decrypt) loads it as usual.

DRF imports PyYAML whenever it is installed, for its own OpenAPI renderer,
which this service does not use (drf-spectacular makes the schema): about
1 MB. PyYAML is installed for drf-spectacular's YAML schema, whose views are
imported at their first request (`lazy_view`, wallet_project/urls.py) and then
import it as usual.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # wsgi.py imports this module before Django and DRF, which must come after what it hides
    from django.http import HttpRequest, HttpResponse


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


def drf_without_yaml() -> None:
    """Import DRF's optional dependencies without PyYAML (see the module docstring); a no-op once imported."""
    with hidden("yaml"):
        import rest_framework.compat  # noqa: F401


def lazy_view(dotted_path: str, **initkwargs: Any) -> Callable[..., HttpResponse]:
    """The view at `dotted_path`, imported at its first request: a class's `as_view(**initkwargs)`, or the
    function itself. For the documentation's views, which import drf-spectacular's generator and PyYAML."""
    loaded: list[Callable[..., HttpResponse]] = []

    def view(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not loaded:
            from django.utils.module_loading import import_string

            target = import_string(dotted_path)
            loaded.append(target.as_view(**initkwargs) if hasattr(target, "as_view") else target)
        return loaded[0](request, *args, **kwargs)

    return view
