from django.contrib import admin
from django.urls import include, path, re_path
from django.views.decorators.csrf import csrf_exempt

from wallet_project import views
from wallet_project.lean_imports import lazy_view

# The back office's name, and where its "View site" link leads: the API documentation,
# the one page of this service made to be read in a browser.
admin.site.site_header = "Wallet back office"
admin.site.site_title = "Wallet back office"
admin.site.index_title = "Back office"
admin.site.site_url = "/docs/"
# The ledger's columns and filters need the width of a normal screen; the index lists the models.
admin.site.enable_nav_sidebar = False

# Money movements first: Django tries the patterns in order, on every request.
api_v1 = [
    path("", include("transactions.urls")),
    path("", include("wallets.urls")),
    path("", include("accounts.urls")),
    path("", include("mfa.urls")),
    path("", include("events.urls")),
    path("", include("events.webhooks.urls")),
    path("", include("loyalty.urls")),
]

# The documentation's views are imported at their first request, with drf-spectacular's generator and PyYAML,
# which no other request needs (wallet_project/lean_imports.py); DRF's views are CSRF-exempt, so these are.
urlpatterns = [
    path("api/v1/", include(api_v1)),
    path("api/schema/", csrf_exempt(lazy_view("drf_spectacular.views.SpectacularAPIView")), name="schema"),
    path(
        "docs/",
        csrf_exempt(lazy_view("drf_spectacular.views.SpectacularSwaggerView", url_name="schema")),
        name="swagger-ui",
    ),
    path("redoc/", csrf_exempt(lazy_view("wallet_project.docs.RedocView", url_name="schema")), name="redoc"),
    path("redoc/redoc.standalone.js", lazy_view("wallet_project.docs.redoc_bundle_view"), name="redoc-bundle"),
    path("health/", views.health, name="health"),
    path("ready/", views.ready, name="ready"),
    path("admin/", admin.site.urls),
    # Any other path under /api/ answers the contract's 404, in DEBUG too.
    re_path(r"^api/", views.api_not_found),
]

handler400 = "wallet_project.views.bad_request"
handler403 = "wallet_project.views.permission_denied"
handler404 = "wallet_project.views.page_not_found"
handler500 = "wallet_project.views.server_error"
