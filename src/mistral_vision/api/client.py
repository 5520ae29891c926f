"""The SDK client, its credentials, one-line errors, and the retry policy for chat requests.

``MISTRAL_API_KEY`` comes from the environment only and is handed to the SDK, never
printed, logged or written anywhere. ``--server-url`` / ``MISTRAL_SERVER_URL`` point the
client at another server (a proxy, or the stand-in server of the tests). Not for: jobs or
predictions themselves.
"""
from __future__ import annotations

import email.utils
import os
import random
import time
from dataclasses import dataclass

from ..errors import UserError

KEY_ENV, URL_ENV = "MISTRAL_API_KEY", "MISTRAL_SERVER_URL"
RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


def make_client(server_url: str | None = None, timeout_s: float = 60.0):
    """A ``mistralai.Mistral`` client, or a one-line error naming what is missing."""
    try:
        from mistralai.client import Mistral
    except ImportError:
        raise UserError("the Mistral API backend needs the official SDK: pip install 'mistral-vision[api]'") from None
    key = os.environ.get(KEY_ENV, "").strip()
    if not key:
        raise UserError(f"{KEY_ENV} is not set; export your Mistral API key in the environment (it is never stored)")
    url = server_url or os.environ.get(URL_ENV) or None
    # The SDK's own retries stay off (its default): with_retries counts every retry for the
    # report and honours Retry-After.
    # We never call the async API, but an SDK-owned async client is closed by a GC finalizer
    # that runs asyncio.run(); a finalizer that imports while another import is in progress
    # raises KeyError(<thread id>) inside importlib on Python < 3.12 (seen in our test suite).
    # A supplied async client is left alone by that finalizer.
    import httpx

    return Mistral(api_key=key, server_url=url, timeout_ms=int(timeout_s * 1000),
                   async_client=httpx.AsyncClient(follow_redirects=True))


def status_of(exc) -> int | None:
    """HTTP status of an SDK error, None for transport errors (timeouts, refused connections)."""
    return getattr(exc, "status_code", None)


def is_transport_error(exc) -> bool:
    import httpx

    return isinstance(exc, (httpx.TimeoutException, httpx.TransportError))


def describe(exc, what: str) -> UserError:
    """One line for an API failure: what was being done, the status, and the fix when known."""
    status = status_of(exc)
    if status == 401:
        return UserError(f"{what}: the server rejected the API key (401 Unauthorized); check {KEY_ENV}")
    if status == 403:
        return UserError(f"{what}: not allowed with this API key (403 Forbidden)")
    if status == 404:
        return UserError(f"{what}: not found (404)")
    if status is not None:
        body = " ".join(str(getattr(exc, "body", "") or "").split())[:200]
        return UserError(f"{what}: HTTP {status}" + (f": {body}" if body else ""))
    if is_transport_error(exc):
        return UserError(f"{what}: cannot reach the server ({type(exc).__name__}); check the network or --server-url")
    return UserError(f"{what}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")


def call(what: str, fn, *args, **kwargs):
    """Run one SDK call; API and transport failures become one-line UserErrors."""
    from mistralai.client.errors import MistralError

    try:
        return fn(*args, **kwargs)
    except MistralError as e:
        raise describe(e, what) from None
    except Exception as e:
        if is_transport_error(e):
            raise describe(e, what) from None
        raise


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter; a server's Retry-After wins when it asks for longer."""
    max_retries: int = 8
    base_s: float = 0.5
    cap_s: float = 30.0

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        backoff = rng.uniform(0, min(self.cap_s, self.base_s * 2 ** attempt))
        return max(backoff, min(retry_after, 300.0)) if retry_after is not None else backoff


def retry_after_seconds(exc) -> float | None:
    """Retry-After of an HTTP error (seconds or an HTTP date), if the server sent one."""
    headers = getattr(exc, "headers", None)
    value = headers.get("retry-after") if headers is not None else None
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        when = email.utils.parsedate_to_datetime(value)
        return max(0.0, when.timestamp() - time.time()) if when else None


def retryable(exc) -> bool:
    status = status_of(exc)
    return status in RETRY_STATUS if status is not None else is_transport_error(exc)


def with_retries(fn, policy: RetryPolicy, rng: random.Random, sleep=time.sleep):
    """Call ``fn()`` until it succeeds or fails for good -> (result or None, retries, last error)."""
    retries = 0
    while True:
        try:
            return fn(), retries, None
        except Exception as e:
            if not retryable(e):
                if status_of(e) is not None:      # 400 / 401 / 404 ...: retrying cannot help
                    raise describe(e, "chat completion") from None
                return None, retries, e
            if retries >= policy.max_retries:
                return None, retries, e
            sleep(policy.delay(retries, retry_after_seconds(e), rng))
            retries += 1
