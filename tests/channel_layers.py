"""The channel layer of tests that need a real one: channels-redis, on the Redis that
REDIS_URL names (CI sets it)."""

import os
from typing import Any

import pytest


def use_redis(settings: Any) -> str:
    """Point the channel layer at REDIS_URL's Redis; its URL. Skips without one."""
    url = os.environ.get("REDIS_URL")
    if not url:
        pytest.skip("REDIS_URL is not set (CI sets it)")
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [url]},
        }
    }
    return url
