"""End to end in a real browser: Debian's chromium, driven through chromium-driver with
Selenium, reads the pages `deploybot run` serves on a recorded deploy day.

The day: pkgdb2 2.0 (⚠ API BREAK) started an hour ago and is running; nuancier 1.3 starts
in 3 days; the database holds the deploy's incidents — #1 reported by alice, taken by bob
4 minutes later and fixed after 40 minutes, #2 still open.  The bot is a real process
(tests/botprocess.py) on ngircd, its web server on a free port of 127.0.0.1.

Chromium runs headless with a fresh profile and without any of its own traffic
(background networking, component updates, sync, first-run: off; every host name but
127.0.0.1 resolves to nothing), so the test needs no network; Selenium is given both
binaries, so it never looks for a browser or driver to download.  The browser's own
network log (DevTools performance log) shows every request the pages made: all of them
go to the bot.  Screenshots of the three pages are saved as artefacts in
``$DEPLOYBOT_TEST_ARTIFACTS/browser/`` (default ``test-artifacts/browser/`` in the
repository; .gitignore'd).

Without chromium or chromium-driver the test skips, saying what to install — except in CI
(``CI`` set) or under .ci/run (``DEPLOYBOT_REQUIRE_BROWSER=1``), which installs both: there
their absence fails it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

from deploybot.store import Store
from tests.botprocess import (
    UNTHROTTLED,
    BotProcesses,
    bot_process_fixture,  # noqa: F401  (the bot_process fixture)
    joined,
)
from tests.ircd.fixtures import IrcClientFactory
from tests.ircd.servers import NgircdServer
from tests.planfactory import make_plan
from tests.test_web_e2e import start_with_web

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
ADMIN = "#ops"
#: What Chromium is started with: headless, no sandbox (root in CI), none of its own traffic.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--no-proxy-server",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    "--window-size=1280,1400",
)


def artifacts_dir() -> Path:
    base = os.environ.get("DEPLOYBOT_TEST_ARTIFACTS") or str(REPO / "test-artifacts")
    path = Path(base) / "browser"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def browser(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[webdriver.Chrome]:
    """Headless chromium with a fresh profile under tmp_path and its network log on."""
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if shutil.which(path) is None]
    if missing:
        message = (
            f"{' and '.join(missing)} not found: apt-get install chromium chromium-driver "
            "(.ci/run installs them)"
        )
        if os.environ.get("CI") or os.environ.get("DEPLOYBOT_REQUIRE_BROWSER"):
            pytest.fail(f"in CI the browser test may not skip: {message}")
        pytest.skip(message)
    monkeypatch.setenv("SE_OFFLINE", "true")  # Selenium Manager: never download anything
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(
        service=Service(CHROMEDRIVER, log_output=str(tmp_path / "chromedriver.log")),
        options=options,
    )
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def requests_made(driver: webdriver.Chrome) -> list[tuple[str, str]]:
    """Every request the browser sent since the last call (DevTools network events), as
    (URL, URL of the document that asked for it)."""
    made = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            params = message["params"]
            made.append((params["request"]["url"], params.get("documentURL", "")))
    return made


def record_deploy_day(database: Path, when: datetime) -> None:
    """The deploy's incidents, written before the bot starts (as an earlier run would):
    #1 by alice at +5 min, taken by bob at +9 and fixed at +45; #2 by carol at +20, open."""
    with Store.open(database) as store:
        numbers = [
            store.report_incident(
                service="pkgdb2",
                text=text,
                reporter_nick=nick,
                reporter_account=None,
                channel="#pkgdb2-firefight",
                now=when + timedelta(minutes=minutes),
                deploy_id="pkgdb2-2.0",
                minutes_into_deploy=minutes,
            ).number
            for nick, minutes, text in (
                ("alice", 5, "the acl page returns 500"),
                ("carol", 20, "collections list is empty"),
            )
        ]
        store.take(numbers[0], "bob", None, when + timedelta(minutes=9))
        store.fix(numbers[0], "bob", None, when + timedelta(minutes=45))


@pytest.mark.irc
async def test_the_pages_of_a_deploy_day_in_chromium(
    ngircd_server: NgircdServer,
    irc_client: IrcClientFactory,
    bot_process: BotProcesses,
    browser: webdriver.Chrome,
) -> None:
    """/ shows the running deploy with ⚠ API BREAK, the countdown of the next one and the
    open incident, and links to the deploy page; the deploy page shows who is on shift and
    both incidents; /digest/DATE shows the day's numbers.  Nothing is fetched from
    anywhere but the bot; a screenshot of each page is kept."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    when = now - timedelta(hours=1)
    bot = bot_process(
        port=ngircd_server.port,
        nick="deploybot",
        admin_channel=ADMIN,
        countdowns="0",
        bot_settings=UNTHROTTLED,
    )
    bot.write_plan(make_plan(when=when, duration=timedelta(hours=8)))
    bot.write_plan(
        make_plan(
            id="nuancier-1.3",
            service="nuancier",
            release="1.3",
            title="nuancier bug fixes",
            when=now + timedelta(days=3),
            duration=timedelta(hours=1),
            api_breaks=(),
            major=False,
        )
    )
    record_deploy_day(bot.database, when)
    watcher = await joined(irc_client, ngircd_server.port, "watcher", [ADMIN])
    port = await start_with_web(bot, watcher)
    base = f"http://127.0.0.1:{port}/"
    shots = artifacts_dir()

    browser.get(base)
    body = browser.find_element(By.TAG_NAME, "body").text
    browser.save_screenshot(str(shots / "front-page.png"))
    assert "pkgdb2 2.0" in body and "⚠ API BREAK" in body
    assert re.search(r"running: started 1h( 1m)? ago", body), body
    assert "nuancier 1.3" in body and "in 3 days" in body
    assert "collections list is empty" in body  # open: shown whatever the day

    browser.find_element(By.LINK_TEXT, "pkgdb2 2.0").click()
    assert browser.current_url == f"{base}deployments/pkgdb2-2.0"
    body = browser.find_element(By.TAG_NAME, "body").text
    browser.save_screenshot(str(shots / "deploy-page.png"))
    assert browser.title == "deploy pkgdb2-2.0"
    assert "⚠ API BREAK" in body and "/api/packager/acl" in body
    assert "On shift now: pingou (infrastructure), dgilmore (rel-eng)." in body
    assert "the acl page returns 500" in body and "collections list is empty" in body
    assert "fixed after 40m by bob" in body

    day = (when + timedelta(minutes=5)).date().isoformat()
    browser.get(f"{base}digest/{day}")
    body = browser.find_element(By.TAG_NAME, "body").text
    browser.save_screenshot(str(shots / "digest-page.png"))
    assert f"incident digest {day}" in browser.title
    assert "median 4m, mean 4m (1 of 2 acknowledged)" in body
    assert "median 40m, mean 40m (1 of 2 fixed)" in body
    assert "collections list is empty" in body

    made = requests_made(browser)
    ours = [url for url, document in made if document.startswith(base)]
    assert f"{base}deployments/pkgdb2-2.0" in ours
    needed = [url for url in ours if not url.startswith("data:")]
    assert all(url.startswith(base) for url in needed), f"a page fetched from elsewhere: {needed}"
    # and nothing at all went over the network but to the bot (the browser's own
    # chrome:// pages are not network traffic)
    network = [url for url, _ in made if urlsplit(url).scheme in ("http", "https", "ws", "wss")]
    assert all(url.startswith(base) for url in network), network

    await bot.stop(watcher)
    assert "Traceback" not in bot.log_text()
    for name in ("front-page.png", "deploy-page.png", "digest-page.png"):
        assert (shots / name).stat().st_size > 10_000, name
