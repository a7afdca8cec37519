from tests.support.browser import chromium  # noqa: F401  (fixture)
from tests.support.memory_broker import published  # noqa: F401  (fixture)
from tests.support.worker import rabbitmq_url, redis_url  # noqa: F401  (fixtures)
