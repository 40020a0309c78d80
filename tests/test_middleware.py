"""The admin's middleware (sessions, session auth, messages) runs for the admin and is stepped around for /api/."""

from django.http import HttpResponse
from django.test import RequestFactory

from wallet_project.middleware import SiteAuthenticationMiddleware, SiteMessageMiddleware, SiteSessionMiddleware


def _run(path: str) -> dict:
    seen = {}

    def view(request):
        seen.update(
            session=hasattr(request, "session"),
            user=hasattr(request, "user"),
            messages=hasattr(request, "_messages"),
        )
        return HttpResponse()

    chain = SiteSessionMiddleware(SiteAuthenticationMiddleware(SiteMessageMiddleware(view)))
    chain(RequestFactory().get(path))
    return seen


def test_api_requests_step_around_the_admins_middleware():
    assert _run("/api/v1/wallets/") == {"session": False, "user": False, "messages": False}


def test_admin_requests_go_through_it():
    assert _run("/admin/") == {"session": True, "user": True, "messages": True}
