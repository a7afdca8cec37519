from tests.support.browser import chromium  # noqa: F401  (fixture)
