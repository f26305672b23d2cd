"""HTTP client of the Cessio Factor API (docs/factor-api.openapi.yaml): the ``api`` channel.

Reads the factor's replies, writes requests; nothing else. Every call has ``(connect, read)`` timeouts and
a total deadline; the Session mounts ``HTTPAdapter(max_retries=0)`` so that tenacity, here, is the one
layer that retries (docs reliability §2.1). Failures are classified (§0 rule 3):

- :class:`NotSent`: the request certainly did not reach the factor (connect error or timeout, an open
  circuit breaker, 429 or 503 *with* Retry-After: the factor says it did not process it). Retried.
- :class:`Ambiguous`: it may have been processed (read timeout, reset after sending, 5xx without the
  factor saying otherwise, a truncated or unreadable body). Never blindly resent: look up first.
- :class:`Definitive`: a 4xx answer; no retry.

Auth: a bearer token, or OAuth2 client credentials (token fetched once, refreshed once on 401), both from
``SecretRef`` values; TLS verification stays on unless the profile says otherwise.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from typing import Any

import requests
import urllib3
from requests.adapters import HTTPAdapter
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_before_delay, wait_random_exponential

from connector.errors import ConfigError, RetryLater, parse_retry_after
from connector.factors.profile import FactorProfile


class DeliveryError(RetryLater):
    kind = "error"


class NotSent(DeliveryError):
    kind = "not_sent"


class Ambiguous(DeliveryError):
    kind = "ambiguous"


class Definitive(DeliveryError):
    kind = "definitive"

    def __init__(self, message: str, *, status: int, code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code = status, code


class BreakerOpen(NotSent):
    pass


class CircuitBreaker:
    """Opens after ``threshold`` consecutive failures; stays open ``cooldown`` s (jittered); then lets one
    safe GET probe through (half-open). While open, every call fails fast as :class:`BreakerOpen`."""

    def __init__(self, threshold: int = 5, cooldown: float = 30.0, *, clock: Callable[[], float] = time.monotonic):
        self.threshold, self.cooldown, self.clock = threshold, cooldown, clock
        self.failures = 0
        self.opened_at: float | None = None
        self.open_for = cooldown
        self.opened_count = 0
        self._lock = threading.Lock()

    @property
    def state(self) -> str:
        if self.opened_at is None:
            return "closed"
        return "half_open" if self.clock() >= self.opened_at + self.open_for else "open"

    def seconds_until_probe(self) -> float:
        if self.opened_at is None:
            return 0.0
        return max(0.0, self.opened_at + self.open_for - self.clock())

    def before_call(self, *, probe: bool) -> None:
        state = self.state
        if state == "open" or (state == "half_open" and not probe):
            raise BreakerOpen(f"circuit open for {self.seconds_until_probe():.1f}s more")

    def success(self) -> None:
        with self._lock:
            self.failures, self.opened_at = 0, None

    def failure(self) -> None:
        with self._lock:
            self.failures += 1
            if self.opened_at is not None or self.failures >= self.threshold:
                self.opened_at = self.clock()
                self.open_for = self.cooldown * (0.5 + random.random())  # jitter: no synchronised probes
                self.opened_count += 1


def _never_connected(exc: BaseException) -> bool:
    """True only when we can prove the bytes never left: a connect timeout or refused/failed connect."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, urllib3.exceptions.NewConnectionError | urllib3.exceptions.NameResolutionError):
            return True
        reason = getattr(seen, "reason", None)
        if isinstance(reason, urllib3.exceptions.NewConnectionError):
            return True
        for arg in getattr(seen, "args", ()):
            if isinstance(arg, urllib3.exceptions.MaxRetryError) and isinstance(
                    arg.reason, urllib3.exceptions.NewConnectionError | urllib3.exceptions.ConnectTimeoutError):
                return True
        seen = seen.__cause__ or seen.__context__
    return False


class FactorApi:
    """One factor's API. Not shared between threads (one Session each)."""

    def __init__(self, profile: FactorProfile, *, breaker: CircuitBreaker | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if not profile.base_url:
            raise ConfigError("the api channel needs base_url", key=f"factors.{profile.name}.base_url")
        self.profile = profile
        self.base = profile.base_url.rstrip("/")
        self.breaker = breaker or CircuitBreaker(profile.breaker_threshold, profile.breaker_cooldown)
        self.sleep = sleep
        self.session = requests.Session()
        adapter = HTTPAdapter(max_retries=0, pool_maxsize=4)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.verify = profile.ca_bundle or profile.verify_tls
        self._token: str | None = None
        self.requests_made = 0

    # -- auth -------------------------------------------------------------------------------------
    def _bearer(self, *, refresh: bool = False) -> str:
        if self._token and not refresh:
            return self._token
        profile = self.profile
        if profile.client_id and profile.client_secret is not None and profile.token_url:
            secret = profile.client_secret.reveal()
            try:  # third-party errors stop here: the caller sees one Cessio error, never a traceback
                reply = self.session.post(profile.token_url, json={
                    "grant_type": "client_credentials", "client_id": profile.client_id, "client_secret": secret},
                    timeout=(profile.connect_timeout, profile.read_timeout))
                if reply.status_code != 200:
                    raise Definitive(f"token endpoint answered {reply.status_code}", status=reply.status_code)
                token = reply.json()["access_token"]
            except requests.RequestException as exc:
                what = "could not connect" if _never_connected(exc) else f"{type(exc).__name__} after sending"
                kind = NotSent if _never_connected(exc) else Ambiguous
                raise kind(f"OAuth2 token endpoint of factor {profile.name}: {what}") from None
            except (ValueError, KeyError, TypeError):
                raise Definitive(f"OAuth2 token endpoint of factor {profile.name}: reply without access_token",
                                 status=0, code="BAD_TOKEN_REPLY") from None
            if not isinstance(token, str) or not token:
                raise Definitive(f"OAuth2 token endpoint of factor {profile.name}: empty access_token",
                                 status=0, code="BAD_TOKEN_REPLY")
            self._token = token
        elif profile.token is not None:
            self._token = profile.token.reveal()
        else:
            raise ConfigError("the api channel needs token or client_id/client_secret/token_url",
                              key=f"factors.{profile.name}.token")
        from connector.logs import register_secret

        register_secret(self._token)
        return self._token

    # -- one HTTP exchange, classified ------------------------------------------------------------
    def _once(self, method: str, path: str, *, json_body: Any = None, key: str | None = None,
              deadline_at: float, probe: bool = False, retry_auth: bool = True) -> tuple[int, Any]:
        self.breaker.before_call(probe=probe)
        remaining = deadline_at - time.monotonic()
        if remaining <= 0:
            raise NotSent("deadline reached before the call")
        headers = {"Authorization": f"Bearer {self._bearer()}", "Accept": "application/json"}
        if key:
            headers["Idempotency-Key"] = key
        timeout = (min(self.profile.connect_timeout, remaining), min(self.profile.read_timeout, remaining))
        self.requests_made += 1
        try:
            reply = self.session.request(method, self.base + path, json=json_body, headers=headers,
                                         timeout=timeout, stream=True)
            try:
                content = self._read_within(reply, deadline_at)
            finally:
                reply.close()
        except requests.RequestException as exc:
            self.breaker.failure()
            if _never_connected(exc):
                raise NotSent(f"{method} {path}: could not connect ({type(exc).__name__})") from None
            raise Ambiguous(f"{method} {path}: {type(exc).__name__} after sending") from None
        status = reply.status_code
        if status == 401 and retry_auth:
            self._bearer(refresh=True)
            return self._once(method, path, json_body=json_body, key=key, deadline_at=deadline_at,
                              probe=probe, retry_auth=False)
        retry_after = parse_retry_after(reply.headers.get("Retry-After"), self.profile.max_retry_after)
        if status == 429 or (status == 503 and retry_after is not None):
            if status == 503:
                self.breaker.failure()
            raise NotSent(f"{method} {path}: {status}", retry_after=retry_after)
        if status >= 500:
            self.breaker.failure()
            raise Ambiguous(f"{method} {path}: {status} without an answer")
        try:
            body = requests.models.complexjson.loads(content) if content else None
        except ValueError:
            self.breaker.failure()
            raise Ambiguous(f"{method} {path}: {status} with an unreadable body") from None
        self.breaker.success()
        if status >= 400:
            code = body.get("code") if isinstance(body, dict) else None
            message = body.get("message") if isinstance(body, dict) else ""
            raise Definitive(f"{method} {path}: {status} {code}: {message}", status=status, code=code)
        return status, body

    @staticmethod
    def _read_within(reply: requests.Response, deadline_at: float) -> bytes:
        """Read the body, enforcing the total deadline even against a slow-drip server."""
        chunks = []
        raw = reply.raw
        while True:
            if time.monotonic() > deadline_at:
                raise requests.exceptions.ReadTimeout("total deadline passed while reading the body")
            try:
                chunk = raw.read1(65536)  # whatever one socket read brings: a slow drip cannot hide here
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                raise requests.exceptions.ConnectionError(f"reading the body: {exc}") from exc
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)

    def call(self, method: str, path: str, *, json_body: Any = None, key: str | None = None,
             deadline: float | None = None, retry_ambiguous: bool = False, probe: bool = False) -> tuple[int, Any]:
        """One logical call with tenacity retries: NotSent always (same key), Ambiguous only when the call
        is safe to repeat (GET: ``retry_ambiguous=True``). A fresh ``Retrying`` per call (tenacity pitfalls)."""
        budget = deadline if deadline is not None else self.profile.deadline
        deadline_at = time.monotonic() + budget
        kinds = (NotSent, Ambiguous) if retry_ambiguous else (NotSent,)
        fallback = wait_random_exponential(multiplier=0.05, max=min(5.0, budget))

        def wait(state: RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            hinted = getattr(exc, "retry_after", None)
            if hinted is not None:
                return hinted + random.uniform(0, 0.05)  # honour Retry-After, plus a little jitter
            return fallback(state)

        def retryable(exc: BaseException) -> bool:  # an open breaker goes back to the engine, never spins
            return isinstance(exc, kinds) and not isinstance(exc, BreakerOpen)

        retrying = Retrying(retry=retry_if_exception(retryable), stop=stop_before_delay(budget), wait=wait,
                            reraise=True, sleep=self.sleep)
        return retrying(self._once, method, path, json_body=json_body, key=key, deadline_at=deadline_at,
                        probe=probe)

    # -- the API --------------------------------------------------------------------------------
    def health(self) -> dict:
        """The half-open probe: a safe GET."""
        return self._once("GET", "/health", deadline_at=time.monotonic() + self.profile.connect_timeout
                          + self.profile.read_timeout, probe=True)[1]
