"""The options most apps set, and some of their defaults (the table below has every one)."""

import os

from asgi_session import AuthConfig, RateLimits

config = AuthConfig(
    secret=os.environ["AUTH_SECRET"],  # or a list: the first encrypts, all decrypt
    providers=[],
    base_path="/auth",
    max_age=30 * 24 * 60 * 60,
    update_age=24 * 60 * 60,
    rate_limits=RateLimits(),
    bearer_tokens=False,
    fresh_age=300,
)
