"""The HTTP client under `NemoClient`: httpx's, reading cookies only from answers that set one.

httpx hands every response to `http.cookiejar` through two adapter objects it builds per
response, a fifth of the client's CPU per request (bench figure 1), although the backend's
answers set no cookie. A response with a `Set-Cookie` header is still read as httpx would,
and its cookies are sent back on the requests that follow.
"""

from typing import Any

import httpx

SETS_COOKIE = ("set-cookie", "set-cookie2")


class SetCookieJar(httpx.Cookies):
    def extract_cookies(self, response: httpx.Response) -> None:
        if any(name in response.headers for name in SETS_COOKIE):
            super().extract_cookies(response)


class BackendHttp(httpx.Client):
    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._jar = SetCookieJar(options.get("cookies"))

    @property
    def cookies(self) -> httpx.Cookies:
        return self._jar

    @cookies.setter
    def cookies(self, cookies: Any) -> None:
        self._jar = SetCookieJar(cookies)
