"""A counselor's journey in a real browser: Debian's Chromium driven by Playwright.

Select with `-m browser`. Screenshots of each main page go to var/screenshots/
for a reviewer to look at; the tests assert that they were written.
"""

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from apps.accounts.models import User
from apps.feedback.models import Intervention, TrainingFeedback
from tests.conftest import REQUIRE_SERVICES
from tests.dashboards.conftest import PASSWORD, StaticRiskSource, Term, add_students, make_risks

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(settings.BASE_DIR) / "var" / "screenshots"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        reason = "needs Debian's Chromium: apt-get install chromium chromium-driver"
        if REQUIRE_SERVICES:
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the test's own
    # ORM calls (setting up data, checking what was saved) are still synchronous.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield chromium
        chromium.close()
    if previous is None:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


class Page:
    """A browser tab that records every request, to prove nothing leaves the server."""

    def __init__(self, browser: Any, base_url: str, **context: Any) -> None:
        self.context = browser.new_context(locale="en-GB", **context)
        self.page = self.context.new_page()
        self.page.set_default_timeout(15_000)
        self.base_url = base_url
        self.requests: list[str] = []
        self.page.on("request", lambda request: self.requests.append(request.url))

    def shot(self, name: str, *, full_page: bool = True) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=full_page)
        assert path.is_file() and path.stat().st_size > 5_000, path
        return path

    def external_requests(self) -> list[str]:
        return [
            url
            for url in self.requests
            if not url.startswith(self.base_url) and not url.startswith("data:")
        ]

    def sign_in(self, username: str) -> None:
        self.page.goto(self.base_url + "/caseload/")
        self.page.get_by_label("Username").fill(username)
        self.page.get_by_label("Password").fill(PASSWORD)
        self.page.get_by_role("button", name="Sign in").click()
        self.page.wait_for_url("**/caseload/")


@pytest.fixture
def school_with_students(term: Term, counselor: User, with_risk: StaticRiskSource) -> Term:
    students = add_students(term.school, 24, year=term.year, today=term.today)
    with_risk.risks = make_risks(students)
    return term


def test_a_counselor_follows_a_student_from_risk_to_intervention_and_feedback(
    browser: Any, live_server: Any, school_with_students: Term, counselor: User
) -> None:
    tab = Page(browser, live_server.url, viewport={"width": 1280, "height": 900})
    page = tab.page

    page.goto(live_server.url + "/caseload/")
    assert "/signin/" in page.url
    tab.shot("signin")
    tab.sign_in("counselor")
    assert page.get_by_role("heading", name="Caseload").is_visible()
    # Keyboard first: the first Tab lands on the skip link, which moves focus to the content.
    page.keyboard.press("Tab")
    assert "Skip" in page.evaluate("document.activeElement.textContent")
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    assert page.locator("table.caseload tbody tr").count() == 24
    tab.shot("caseload")

    page.get_by_label("Grade", exact=True).select_option("7")
    page.get_by_role("button", name="Apply filters").click()
    page.wait_for_url("**grade=7**")
    grades = page.locator("table.caseload tbody tr td:nth-child(5)").all_inner_texts()
    assert grades and all(text.startswith("7") for text in grades)
    tab.shot("caseload-filtered")

    page.locator("table.caseload tbody tr a").first.click()
    page.wait_for_url("**/students/**")
    assert page.get_by_role("heading", name="Attendance by week", exact=False).is_visible()
    page.wait_for_function("document.querySelector('canvas[data-chart]').width > 0")
    tab.shot("student")

    page.get_by_text("Record an intervention").click()
    page.get_by_label("Type").select_option("home_visit")
    page.get_by_label("Goal").fill("Visit the family and agree a plan to attend daily")
    page.get_by_label("Notes").fill("Guardian works in Dhaka; grandmother at home.")
    page.get_by_role("button", name="Save the intervention").click()
    page.wait_for_url("**#interventions")
    assert page.get_by_text("The intervention was recorded.").is_visible()
    tab.shot("intervention-recorded")
    assert Intervention.objects.filter(owner=counselor, intervention_type="home_visit").exists()

    page.get_by_role("button", name="Agree", exact=True).click()
    page.wait_for_url("**#risk")
    assert page.get_by_text("Thank you: your feedback was recorded.").is_visible()
    assert TrainingFeedback.objects.filter(given_by=counselor, verdict="agree").count() == 1

    page.get_by_role("button", name="বাংলা").click()
    page.wait_for_load_state()
    assert page.locator("html").get_attribute("lang") == "bn"
    assert page.get_by_role("heading", name="সহায়তা").is_visible()
    tab.shot("student-bn")
    page.emulate_media(media="print")
    assert not page.locator(".site-header").is_visible()
    tab.shot("student-print")
    page.emulate_media(media="screen")

    page.get_by_role("link", name="কেসলোড").first.click()
    page.wait_for_url("**/caseload/")
    assert page.get_by_role("heading", name="কেসলোড").is_visible()
    tab.shot("caseload-bn")
    page.get_by_role("link", name="বিদ্যালয়ের সারসংক্ষেপ").click()
    page.wait_for_function("document.querySelector('canvas[data-chart]').width > 0")
    tab.shot("overview-bn")
    counselor.refresh_from_db()
    assert counselor.preferred_language == "bn"

    page.get_by_role("button", name="English").click()
    page.wait_for_load_state()
    assert page.get_by_role("heading", name="School overview").is_visible()
    tab.shot("overview")
    assert tab.external_requests() == []
    tab.context.close()


def test_the_pages_fit_a_360_pixel_phone(
    browser: Any, live_server: Any, school_with_students: Term, counselor: User
) -> None:
    tab = Page(
        browser,
        live_server.url,
        viewport={"width": 360, "height": 740},
        device_scale_factor=2,
        is_mobile=True,
    )
    tab.sign_in("counselor")
    student_url = tab.page.locator("table.caseload tbody tr a").first.get_attribute("href")
    for name, url in [
        ("caseload-360", "/caseload/"),
        ("student-360", student_url),
        ("overview-360", "/overview/"),
    ]:
        tab.page.goto(live_server.url + url)
        # Wide tables scroll inside their own region; the page itself never does.
        assert tab.page.evaluate("document.documentElement.scrollWidth") <= 360, name
        tab.shot(name)
    assert tab.external_requests() == []
    tab.context.close()


def test_screenshots_are_kept_for_review() -> None:
    # Runs after the journeys above (file order); a reviewer opens these.
    if shutil.which(CHROMIUM) is None and not REQUIRE_SERVICES:
        pytest.skip("no browser, no screenshots")
    expected = {
        "signin",
        "caseload",
        "caseload-filtered",
        "student",
        "intervention-recorded",
        "student-bn",
        "student-print",
        "caseload-bn",
        "overview-bn",
        "overview",
        "caseload-360",
        "student-360",
        "overview-360",
    }
    assert expected <= {path.stem for path in SCREENSHOTS.glob("*.png")}
