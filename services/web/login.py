"""The operator's login and the page's CSRF defence, without I/O.

Sessions are random tokens held here (bounded, each expiring), carried by an
HttpOnly, SameSite=Strict cookie. CSRF is a double-submit token: every
visitor gets a random token in a cookie and in the page; a change must send
it back in the `X-CSRF-Token` header, which another site's page can neither
read nor set. Changes also need a logged-in session; reading does not.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections import OrderedDict, deque

SESSION_COOKIE = "edgegw_session"
CSRF_COOKIE = "edgegw_csrf"
CSRF_HEADER = "x-csrf-token"
TOKEN_BYTES = 32


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def csrf_ok(cookie: str | None, header: str | None) -> bool:
    """Whether a request carries the same CSRF token in its cookie and header."""
    if not cookie or not header:
        return False
    return hmac.compare_digest(cookie.encode(), header.encode())


class TooManyAttempts(Exception):
    """Too many wrong passwords lately: logins wait (guessing stays slow)."""


class Sessions:
    def __init__(
        self,
        password: str,
        ttl_s: float,
        max_sessions: int,
        max_failures: int = 10,
        failure_window_s: float = 60.0,
    ) -> None:
        self._password = password.encode()
        self._ttl_s = ttl_s
        self._max = max_sessions
        self._expiry: OrderedDict[str, float] = OrderedDict()
        self._failures: deque[float] = deque(maxlen=max_failures)
        self._failure_window_s = failure_window_s

    @property
    def enabled(self) -> bool:
        """Whether anyone can log in (a password is set)."""
        return bool(self._password)

    def log_in(self, password: str, now: float | None = None) -> str | None:
        """A new session token if `password` is the operator's, else None.

        Raises TooManyAttempts while the last `max_failures` wrong passwords
        all fell within `failure_window_s` (the right one waits too)."""
        now = time.monotonic() if now is None else now
        full = len(self._failures) == self._failures.maxlen
        if full and now - self._failures[0] < self._failure_window_s:
            raise TooManyAttempts(f"too many wrong passwords: wait {self._failure_window_s:g} s")
        if not self._password or not hmac.compare_digest(password.encode(), self._password):
            self._failures.append(now)
            return None
        token = new_token()
        self._expiry[token] = now + self._ttl_s
        while len(self._expiry) > self._max:
            self._expiry.popitem(last=False)  # the oldest login goes first
        return token

    def valid(self, token: str | None, now: float | None = None) -> bool:
        if not token:
            return False
        expiry = self._expiry.get(token)
        now = time.monotonic() if now is None else now
        if expiry is None:
            return False
        if expiry <= now:
            del self._expiry[token]
            return False
        return True

    def log_out(self, token: str | None) -> None:
        if token:
            self._expiry.pop(token, None)
