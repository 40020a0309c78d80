import os

from wallet_project.lean_imports import drf_without_yaml, jwt_with_hmac_only

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "wallet_project.settings")

# Before Django loads the apps, which import PyJWT (through simplejwt): every web worker is lighter by
# cryptography's megabytes, and DRF before it is first imported: lighter by PyYAML's (wallet_project/lean_imports.py).
jwt_with_hmac_only()
drf_without_yaml()

from django.core.wsgi import get_wsgi_application  # noqa: E402

application = get_wsgi_application()
