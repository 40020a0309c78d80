import os

from wallet_project.lean_imports import drf_without_yaml, jwt_with_hmac_only

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "wallet_project.settings")

# Before Django loads the apps, which import PyJWT (through simplejwt): every web worker is lighter by
# cryptography's megabytes, and DRF before it is first imported: lighter by PyYAML's (wallet_project/lean_imports.py).
jwt_with_hmac_only()
drf_without_yaml()

from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.urls import get_resolver  # noqa: E402

application = get_wsgi_application()

# Every request resolves its path: the URLconf (the views, their serializers, the schema decorators' imports) is
# loaded with the application, in a gunicorn worker before its start-up objects are frozen (gunicorn.conf.py),
# rather than by each worker's first request, which it made 90-150 ms slower (docs/PERFORMANCE.md, "Worker memory").
get_resolver().url_patterns  # noqa: B018 - the property loads the URLconf's modules
