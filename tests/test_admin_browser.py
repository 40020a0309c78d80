"""The back office's money forms walked in a real headless Chromium, as a Finance user would.

The Django test client proves each rule; this proves the pages work as pages:
the login, the typed value, the error next to the field, the confirmation's
hidden fields carried by the browser, the buttons. Chromium and chromedriver
are Debian packages (`apt-get install chromium chromium-driver`; .ci/run
installs them). Without them the test is skipped on a developer machine and
fails in CI (CI=true), where a skip would hide a broken back office.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from django.urls import reverse

from tests.admin_support import staff_in
from tests.factories import UserFactory, WalletFactory, funded_balance
from transactions.models import Transaction, TransactionSource, TransactionType
from wallets.models import ExchangeRate

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse battery staple 42"
WAIT_SECONDS = 10


def _chromium_or_reason() -> tuple[Any, str]:
    """(selenium's webdriver module, "") when a headless Chromium can be driven, else (None, why not)."""
    try:
        from selenium import webdriver
    except ImportError:
        return None, "selenium is not installed (pip install -r requirements-dev.txt)"
    for program in ("chromium", "chromedriver"):
        if shutil.which(program) is None:
            return None, f"{program} is not installed (apt-get install chromium chromium-driver)"
    return webdriver, ""


@pytest.fixture
def browser() -> Iterator[Any]:
    webdriver, why_not = _chromium_or_reason()
    if webdriver is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"The browser check must run in CI: {why_not}")
        pytest.skip(why_not)
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(executable_path=shutil.which("chromedriver")), options=options)
    driver.implicitly_wait(WAIT_SECONDS)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def plain_http_cookies(settings: Any) -> None:
    # The live server speaks plain HTTP; production cookies are Secure-only.
    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False


def _log_in(browser: Any, base_url: str, email: str) -> None:
    from selenium.webdriver.common.by import By

    browser.get(base_url + reverse("admin:login"))
    browser.find_element(By.NAME, "username").send_keys(email)
    browser.find_element(By.NAME, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    browser.find_element(By.ID, "user-tools")  # the admin's header: logged in


def _fill(browser: Any, fields: dict[str, str]) -> None:
    from selenium.webdriver.common.by import By

    for name, value in fields.items():
        element = browser.find_element(By.NAME, name)
        element.clear()
        element.send_keys(value)


def _submit(browser: Any) -> None:
    from selenium.webdriver.common.by import By

    browser.find_element(By.CSS_SELECTOR, "#content-main form input[type=submit]").click()


def _error_next_to(browser: Any, field: str) -> str:
    from selenium.webdriver.common.by import By

    return browser.find_element(By.CSS_SELECTOR, f".form-row.field-{field}.errors ul.errorlist").text


def test_finance_walks_the_adjust_and_rate_forms_in_a_browser(browser, live_server, plain_http_cookies):
    from selenium.webdriver.common.by import By

    finance_user = staff_in("Finance")
    finance_user.set_password(PASSWORD)
    finance_user.save()
    owner = UserFactory(name="Grace Hopper", email="grace@example.com")
    balance = funded_balance(amount="10.00", wallet=WalletFactory(owner=owner, name="Main USD"))
    _log_in(browser, live_server.url, finance_user.email)

    # Adjust: a typo is an error next to the amount, nothing is booked.
    browser.get(live_server.url + reverse("admin:wallets_walletbalance_adjust", args=[balance.pk]))
    assert "Grace Hopper <grace@example.com>" in browser.find_element(By.ID, "balance-facts").text
    browser.find_element(By.CSS_SELECTOR, "input[name=direction][value=deposit]").click()
    _fill(browser, {"amount": "1e3", "reason": "Goodwill, ticket 12"})
    _submit(browser)
    assert "exponents" in _error_next_to(browser, "amount")
    assert balance.entries.count() == 1

    # A valid amount shows current → resulting; only the confirmation books it.
    _fill(browser, {"amount": "1000.00"})
    _submit(browser)
    assert browser.find_element(By.ID, "balance-change").text == "10.00 → 1010.00 USD"
    assert balance.entries.count() == 1
    browser.find_element(By.ID, "confirm-button").click()
    assert "Booked: Deposit of 1000.00 USD" in browser.find_element(By.CSS_SELECTOR, "ul.messagelist").text
    balance.refresh_from_db()
    assert balance.amount == Decimal("1010.00")
    entry = balance.entries.get(sequence=2)
    assert (entry.type, entry.amount, entry.source, entry.created_by_id, entry.description) == (
        TransactionType.DEPOSIT,
        Decimal("1000.00"),
        TransactionSource.ADMIN,
        finance_user.pk,
        "Goodwill, ticket 12",
    )
    assert Transaction.objects.filter(wallet_balance=balance).count() == 2

    # Rate: 1,08 is an error, not 108.
    old = ExchangeRate.objects.get(base_id="USD", quote_id="EUR", valid_to__isnull=True)
    browser.get(live_server.url + reverse("admin:wallets_exchangerate_add") + "?base=USD&quote=EUR")
    assert browser.find_element(By.ID, "current-rate").text == "0.91"
    _fill(browser, {"rate": "1,08", "reason": "ECB fixing"})
    _submit(browser)
    assert "commas" in _error_next_to(browser, "rate")
    assert ExchangeRate.objects.get(base_id="USD", quote_id="EUR", valid_to__isnull=True) == old

    # A big change is confirmed against a loud warning, then replaces the current rate.
    _fill(browser, {"rate": "1.08"})
    _submit(browser)
    assert "+18.68 %" in browser.find_element(By.ID, "rate-warning").text
    assert browser.find_element(By.ID, "old-rate").text == "0.91"
    browser.find_element(By.ID, "confirm-button").click()
    browser.find_element(By.CSS_SELECTOR, "ul.messagelist")
    current = ExchangeRate.objects.get(base_id="USD", quote_id="EUR", valid_to__isnull=True)
    assert (current.rate, current.created_by_id) == (Decimal("1.08"), finance_user.pk)
    old.refresh_from_db()
    assert old.valid_to is not None


def test_staff_add_an_app_then_give_its_code_after_the_password_in_a_browser(
    browser, live_server, plain_http_cookies, settings
):
    """The admin's second step as staff meet it: enrolment on the first visit, the code on the next."""
    import pyotp
    from selenium.webdriver.common.by import By

    from tests.second_factor import App

    settings.ADMIN_REQUIRE_MFA = True
    support = staff_in("Support")
    support.set_password(PASSWORD)
    support.save()

    # First visit: after the password, the enrolment page (QR code and key), then the recovery codes.
    browser.get(live_server.url + reverse("admin:login"))
    browser.find_element(By.NAME, "username").send_keys(support.email)
    browser.find_element(By.NAME, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    app = App(pyotp.TOTP(browser.find_element(By.ID, "mfa-secret").text), [])
    assert browser.find_element(By.CSS_SELECTOR, "#mfa-qr-code svg")
    _fill(browser, {"code": app.unused_code()})
    browser.find_element(By.ID, "mfa-enrol").click()
    codes = browser.find_elements(By.CSS_SELECTOR, "#mfa-recovery-codes code")
    assert len(codes) == 10
    browser.find_element(By.ID, "mfa-continue").click()
    browser.find_element(By.ID, "user-tools")  # the admin's header: in

    # Next visit: the password, then the app's code.
    browser.delete_all_cookies()
    _log_in_with_code(browser, live_server.url, support.email, app.unused_code())


def _log_in_with_code(browser: Any, base_url: str, email: str, code: str) -> None:
    from selenium.webdriver.common.by import By

    browser.get(base_url + reverse("admin:login"))
    browser.find_element(By.NAME, "username").send_keys(email)
    browser.find_element(By.NAME, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    browser.find_element(By.NAME, "code").send_keys(code)
    browser.find_element(By.ID, "mfa-verify").click()
    browser.find_element(By.ID, "user-tools")


@pytest.mark.parametrize("group", ["Finance", "Support"])
def test_the_dashboard_draws_its_chart_and_sections_in_a_browser(group, browser, live_server, plain_http_cookies):
    """The admin's home page as each group opens it: the server-drawn chart renders with its colours, every
    section shows, and the page follows the admin's dark theme. With ADMIN_SCREENSHOTS set to a folder, the
    page is saved there in both themes, to be looked at."""
    from selenium.webdriver.common.by import By

    from transactions.services import payment_create, transfer_create
    from wallets.services import wallet_set_frozen

    staff = staff_in(group)
    staff.set_password(PASSWORD)
    staff.save()
    owner = UserFactory(name="Grace Hopper", email="grace@example.com")
    main = funded_balance(amount="1200.00", wallet=WalletFactory(owner=owner, name="Main USD"))
    other = funded_balance(amount="30.00")
    payment_create(wallet_balance_id=main.pk, amount=Decimal("12.00"), merchant="Cafe", owner=None, created_by=None)
    transfer_create(
        from_wallet_balance_id=main.pk,
        to_wallet_balance_id=other.pk,
        amount=Decimal("5.00"),
        owner=None,
        created_by=None,
    )
    wallet_set_frozen(wallet_id=other.wallet_id, frozen=True)

    _log_in(browser, live_server.url, staff.email)
    browser.get(live_server.url + reverse("admin:index"))

    chart = browser.find_element(By.ID, "movements-chart")
    assert len(chart.find_elements(By.CSS_SELECTOR, "g.chart-day")) == 30
    bars = chart.find_elements(By.CSS_SELECTOR, "rect.chart-bar")
    assert len(bars) == 3  # today: deposits, the payment, the transfer
    assert all(bar.rect["height"] > 0 and bar.rect["width"] > 0 for bar in bars)
    # The stylesheet is served and applied: bars wear their kind's colour, not SVG's default black.
    assert {browser.execute_script("return getComputedStyle(arguments[0]).fill", bar) for bar in bars} != {
        "rgb(0, 0, 0)"
    }
    for section in ("dashboard-holdings", "dashboard-largest", "dashboard-frozen", "tile-reconcile", "all-sections"):
        assert browser.find_element(By.ID, section).is_displayed(), section
    # 1,200.00 + 30.00 less the payment; the transfer moved money between the two balances.
    assert "USD 2 1,218.00 0.00 1,218.00" in browser.find_element(By.ID, "dashboard-holdings").text
    assert "Grace Hopper" not in browser.find_element(By.ID, "dashboard-largest").text
    assert "grace@example.com" in browser.find_element(By.ID, "dashboard-largest").text

    light = browser.execute_script("return getComputedStyle(document.body).backgroundColor")
    _save_screenshot(browser, f"dashboard-{group.lower()}-light.png")
    browser.execute_script("localStorage.setItem('theme', 'dark')")
    browser.refresh()
    dark = browser.execute_script("return getComputedStyle(document.body).backgroundColor")
    tile_text = browser.execute_script(
        "return getComputedStyle(document.querySelector('#tile-frozen .tile-label')).color"
    )
    assert (light, dark) == ("rgb(255, 255, 255)", "rgb(18, 18, 18)")
    assert tile_text == "rgb(208, 208, 208)"  # the admin's quiet text colour of the dark theme
    _save_screenshot(browser, f"dashboard-{group.lower()}-dark.png")


def _save_screenshot(browser: Any, name: str) -> None:
    folder = os.environ.get("ADMIN_SCREENSHOTS")
    if folder:
        browser.set_window_size(1400, browser.execute_script("return document.body.scrollHeight") + 100)
        browser.save_screenshot(os.path.join(folder, name))
