"""The web tests' fixtures (defined with the page tests) for every web test module."""

from tests.alerts.test_detect import small_world  # noqa: F401
from tests.shelfwatch.web.test_pages import browser, live_server, web_db  # noqa: F401
