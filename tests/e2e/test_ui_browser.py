"""The web interface in real headless Chromium (Debian's chromium + chromedriver, driven by Selenium)
against `agency serve` in its own process: a registrant's and an operator's day, with a screenshot of
every page saved as an artifact and no browser console errors."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import CORPUS, add_account
from live_server import agency_env, start_server
from agency.models import OutboxMessage
from agency.notify.outbox import enqueue_mail

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
CORPUS_FILE = CORPUS / "crossref-deposit" / "crossref-schema-bundle-0.3.1__best-practice__dataset.5.3.0.xml"



def _replaced(stale) -> bool:
    """Selenium's staleness check, also when chromedriver reports the old page's node as gone with
    a generic error ("does not belong to the document") while the new page loads, not as stale."""
    from selenium.common.exceptions import WebDriverException

    try:
        return stale(None)
    except WebDriverException as exc:
        if "does not belong to the document" in str(exc):
            return True
        raise

class Browser:
    """One headless Chromium: pages by path, screenshots in order, console errors collected per page."""

    def __init__(self, base: str, artifacts: Path, name: str) -> None:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--no-first-run", "--window-size=1280,1000"):
            options.add_argument(flag)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
        self.driver.set_page_load_timeout(60)
        self.base, self.artifacts, self.name, self.shots = base, artifacts, name, 0

    def open(self, path: str) -> None:
        self.driver.get(self.base + path)

    def find(self, css: str):
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.CSS_SELECTOR, css)

    def text(self, css: str = "main") -> str:
        return self.find(css).text

    def fill(self, fields: dict[str, str]) -> None:
        for name, value in fields.items():
            element = self.find(f"#{name}")
            element.clear()
            element.send_keys(value)

    def submit(self, form_css: str) -> None:
        """Send the form and wait until the answer's page has replaced this one."""
        self.click(f"{form_css} button[type=submit]")

    def click(self, css: str) -> None:
        from selenium.webdriver.support import expected_conditions
        from selenium.webdriver.support.ui import WebDriverWait

        old = self.find("html")
        self.find(css).click()
        WebDriverWait(self.driver, 60).until(lambda _d: _replaced(expected_conditions.staleness_of(old)))
        WebDriverWait(self.driver, 60).until(
            lambda d: d.execute_script("return document.readyState") == "complete")

    def page(self, label: str) -> str:
        """Screenshot the page, check its title and console, and return its heading."""
        self.shots += 1
        self.driver.save_screenshot(str(self.artifacts / f"{self.name}-{self.shots:02d}-{label}.png"))
        assert self.driver.title.endswith("· agency"), self.driver.title
        errors = [entry for entry in self.driver.get_log("browser") if entry["level"] == "SEVERE"]
        assert not errors, errors
        return self.text("h1")

    def wait_for(self, condition, seconds: float = 60, reload: bool = True) -> None:
        deadline = time.monotonic() + seconds
        while not condition():
            assert time.monotonic() < deadline, "timed out: " + self.text()
            time.sleep(1)
            if reload:
                self.driver.refresh()

    def quit(self) -> None:
        self.driver.quit()


@pytest.fixture
def artifacts(tmp_path_factory) -> Path:
    folder = Path(os.environ.get("AGENCY_TEST_ARTIFACTS") or tmp_path_factory.mktemp("ui-screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"screenshots in {folder}")
    return folder


@pytest.fixture
def live(svc, settings, tmp_path, database_url):
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.skip("chromium and chromedriver are not installed (apt-get install -y chromium chromium-driver): "
                    "browser tests skipped")
    if not CORPUS_FILE.exists():
        pytest.skip(f"../shared corpus not present ({CORPUS_FILE}): browser tests skipped")
    add_account(svc, "dana", "dana-password", "dana@example.org", ["10.32013"])
    env = agency_env(tmp_path, database_url, AGENCY_RUN_SCHEDULER="0")
    made = subprocess.run([sys.executable, "-m", "agency.cli", "operators", "create", "olga"], env=env,
                          input="olga-password\n", capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    svc.db.engine.dispose()
    server = start_server(env)
    try:
        yield server
    finally:
        server.stop()


def test_a_registrants_day_in_the_browser(live, artifacts):
    browser = Browser(live.url, artifacts, "registrant")
    try:
        browser.open("/")
        assert browser.page("home") == "agency: DOI registration"
        browser.click("#sign-in-link")
        assert browser.page("sign-in") == "Sign in"
        browser.fill({"login": "dana", "password": "wrong-password"})
        browser.submit("#sign-in")
        assert "login or password is wrong" in browser.text("#error")
        browser.shots += 1
        browser.driver.save_screenshot(str(artifacts / "registrant-wrong-password.png"))
        browser.driver.get_log("browser")  # the 401 answer is logged by Chromium as a failed resource: expected
        browser.fill({"login": "dana", "password": "dana-password"})
        browser.submit("#sign-in")
        assert browser.page("dashboard") == "Your submissions"

        for label in ("first", "again"):  # the second upload's records are older-or-equal: they fail
            browser.click("nav a[href='/ui/upload']")
            assert browser.page(f"upload-{label}") == "Upload a file"
            browser.find("#file").send_keys(str(CORPUS_FILE))
            browser.submit("#upload")
            browser.wait_for(lambda: browser.text("#status") == "completed")
            assert browser.page(f"submission-{label}").startswith("Submission ")
        assert "3 done of 3: 0 success, 0 warning, 3 failure" in browser.text("#counts")

        browser.find("#status-filter option[value=Failure]").click()
        browser.submit("#record-filter")
        browser.page("failed-records")
        failed = browser.text("#records")
        assert "Failure" in failed and "less or equal to previously submitted version" in failed
        rows = browser.driver.find_elements("css selector", "#records tr")[1:]
        browser.find("input.table-filter").send_keys(rows[0].find_elements("css selector", "td")[1].text)
        assert rows[0].is_displayed() and 1 <= sum(row.is_displayed() for row in rows) <= len(rows)
        browser.find("input.table-filter").send_keys("-no-such-row")
        assert not any(row.is_displayed() for row in rows)
        assert browser.text(".table-filter-count") == f"0 of {len(rows)} rows"
        browser.page("filtered-on-the-page")

        browser.click("nav a[href='/ui/dois']")
        browser.fill({"q": "10.32013"})
        browser.submit("#doi-search")
        browser.page("doi-search")
        browser.click("#doi-results a")
        assert browser.page("doi").startswith("DOI 10.32013/")
        assert browser.text("#doi-url").startswith("http")

        browser.click("nav a[href='/ui/account']")
        browser.page("account")
        browser.fill({"old_password": "dana-password", "new_password": "dana-new-password",
                      "repeat_password": "dana-new-password"})
        browser.submit("#password-form")
        assert "Your password is changed." in browser.text()
        browser.page("password-changed")

        browser.click("#sign-out")
        assert browser.page("signed-out") == "Sign in"
        browser.open("/ui/")
        assert browser.text("h1") == "Sign in"  # the dashboard wants a session again
        browser.fill({"login": "dana", "password": "dana-new-password"})
        browser.submit("#sign-in")
        assert browser.page("new-password-works") == "Your submissions"
    finally:
        browser.quit()


def test_an_operators_day_in_the_browser(live, artifacts, svc, settings):
    from agency.services import build_agency

    agency = build_agency(settings)
    with agency.db.transaction() as session:
        message = enqueue_mail(session, key="browser-dead", recipients=["lost@example.org"], subject="Undelivered",
                               text="t")
        session.flush()
        message.status, message.last_error, dead_id = "dead", "550 mailbox unavailable", message.id
    browser = Browser(live.url, artifacts, "staff")
    try:
        browser.open("/staff/")
        assert browser.page("staff-sign-in") == "Staff sign in"
        browser.fill({"login": "olga", "password": "olga-password"})
        browser.submit("#sign-in")
        assert browser.page("console") == "Staff console"

        browser.click("nav a[href='/staff/accounts']")
        browser.page("accounts")
        browser.fill({"login": "erin", "email": "erin@example.org", "password": "erin-password",
                      "prefixes": "10.9999"})
        browser.submit("#create-account")
        assert browser.page("account-created") == "Account erin"
        browser.fill({"prefix": "10.99990"})
        browser.submit("#add-prefix")
        assert browser.text("#account-prefixes") == "10.9999, 10.99990"
        assert "prefix.add" in browser.text("#trail")
        browser.page("prefix-added")

        browser.click("nav a[href='/staff/mail']")
        browser.page("mail")
        assert "550 mailbox unavailable" in browser.text("#dead-mail")
        browser.submit("#retry-mail")
        assert "1 message(s) will be tried again." in browser.text()
        browser.page("mail-retried")
        with agency.db.sessions() as session:
            assert session.get(OutboxMessage, dead_id).status == "pending"

        browser.click("nav a[href='/staff/audit']")
        trail = browser.text("#audit")
        assert "operator:olga" in trail and "account.create" in trail and "mail.retry" in trail
        browser.page("audit")
        browser.click("nav a[href='/staff/queue']")
        browser.page("queue")
    finally:
        browser.quit()
        agency.db.engine.dispose()
