"""What every request to the service passes before it reaches an endpoint: size, host, origin, token.

Why each check:
- **Body size**: bodies are refused on their declared length before they are read (a 600 MB upload was
  once received and spooled in full before its 413; a 4 MB JSON filter took seconds to parse).
  A request with any Transfer-Encoding (chunked) is refused, also next to a Content-Length, which the
  HTTP parser would then ignore: browsers and HTTP clients send a plain Content-Length.
- **Host**: without a token the service answers loopback names only, so a DNS-rebinding page (a
  foreign name that resolves to 127.0.0.1) cannot drive the API from the user's browser.
- **Origin**: a state-changing request (POST/PUT/PATCH/DELETE) from another origin is refused, so
  no web page can upload files, start jobs or add rules through the user's browser (a CORS-"simple"
  multipart POST needs no preflight).
- **Token**: compared as bytes in constant time (a non-ASCII header once made ``compare_digest`` on
  str raise, a 500).
- **Headers**: a content security policy, no framing, no MIME sniffing, no referrer.

Example:
    >>> host_name("127.0.0.1:8000"), host_name("[::1]:80"), host_name("Example.COM")
    ('127.0.0.1', '::1', 'example.com')
    >>> same_origin("http://localhost:8000", "localhost:8000"), same_origin("https://evil.test", "localhost:8000")
    (True, False)
"""

from __future__ import annotations

import hmac
from urllib.parse import urlsplit

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

COOKIE = "sparsefit_token"
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})
JSON_BODY_LIMIT = 1 << 20  # 1 MiB: far above any real query, filter or rule
MULTIPART_OVERHEAD = 1 << 20  # an upload's form framing on top of the file itself
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
UPLOAD_PATH = "/api/uploads"

# The studio page loads only its own script and stylesheet; /docs needs FastAPI's Swagger bundle.
CSP = "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
DOCS_CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
            "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; img-src 'self' data: https://fastapi.tiangolo.com; "
            "object-src 'none'; base-uri 'none'; frame-ancestors 'none'")
DOCS_PATHS = ("/docs", "/redoc")


def host_name(host: str) -> str:
    """The name part of a Host header value (no port, no brackets), lower case; "" when it is malformed.

    Example:
        >>> host_name("[::1]evil.example"), host_name("localhost:80x")
        ('', '')
    """
    host = host.strip().lower()
    if host.startswith("["):
        name, bracket, rest = host[1:].partition("]")
    elif host.count(":") <= 1:
        name, _, port = host.partition(":")
        rest = f":{port}" if ":" in host else ""
    else:  # an IPv6 address without brackets is not a valid Host
        return ""
    if rest and not (rest.startswith(":") and rest[1:].isdigit()):
        return ""
    return name


def same_origin(origin: str, host: str) -> bool:
    """True when the ``Origin`` header names the very host (and port) the request was sent to."""
    try:
        parts = urlsplit(origin)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc) and parts.netloc.lower() == host.strip().lower()


def _refuse(status: int, detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status)


def _size_problem(request: Request, upload_limit: int) -> JSONResponse | None:
    if request.method not in UNSAFE_METHODS:
        return None
    if "transfer-encoding" in request.headers:  # it wins over Content-Length in the HTTP parser: no size known
        return _refuse(411, "send the body with a Content-Length header (chunked or other transfer encodings are not accepted)")
    declared = request.headers.get("content-length")
    if declared is None:
        return None
    try:
        size = int(declared)
    except ValueError:
        return _refuse(400, f"Content-Length {declared[:40]!r} is not a number")
    limit = upload_limit + MULTIPART_OVERHEAD if request.url.path == UPLOAD_PATH else JSON_BODY_LIMIT
    if size > limit:
        what = "upload" if request.url.path == UPLOAD_PATH else "request body"
        return _refuse(413, f"the {what} is {size:,} bytes, over the {limit:,}-byte limit"
                            + ("; put the file under an allowed root and pick it instead" if what == "upload" else ""))
    return None


def _token_ok(request: Request, token: bytes) -> tuple[bool, bool]:
    """(authorised, came from the ?token= link): bearer header, else the studio cookie, else the query."""
    header = request.headers.get("authorization", "")
    given = header[7:] if header[:7].lower() == "bearer " else request.cookies.get(COOKIE, "")
    if given and hmac.compare_digest(given.encode("utf-8", "surrogateescape"), token):
        return True, False
    from_query = request.query_params.get("token", "")
    return bool(from_query) and hmac.compare_digest(from_query.encode("utf-8", "surrogateescape"), token), True


def install_guard(app: FastAPI, *, token: str | None, upload_limit: int) -> None:
    """Put the checks above in front of every endpoint of ``app`` (``upload_limit`` in bytes)."""
    secret = token.encode("utf-8") if token is not None else None

    @app.middleware("http")
    async def guard(request: Request, call_next):
        response = await _checked(request, call_next)
        docs = request.url.path.startswith(DOCS_PATHS)
        response.headers.setdefault("Content-Security-Policy", DOCS_CSP if docs else CSP)
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        if request.url.path.startswith("/studio/static/"):  # a dozen ES modules: never an old one beside new ones
            response.headers.setdefault("Cache-Control", "no-cache")
        return response

    async def _checked(request: Request, call_next):
        host = request.headers.get("host", "")
        if secret is None and host_name(host) not in LOOPBACK_NAMES:
            return _refuse(400, f"Host {host[:80]!r} is not served: without a token the service answers only "
                                "127.0.0.1, localhost and [::1]; start it with --token to serve other names")
        origin = request.headers.get("origin")
        if request.method in UNSAFE_METHODS and origin is not None and not same_origin(origin, host):
            return _refuse(403, f"cross-origin {request.method} from {origin[:80]!r} refused; "
                                "call the API from the studio page or from a client that sends no foreign Origin")
        problem = _size_problem(request, upload_limit)
        if problem is not None:
            return problem
        from_link = False
        if secret is not None:
            ok, from_link = _token_ok(request, secret)
            if not ok:
                return _refuse(401, "missing or wrong token: send 'Authorization: Bearer <token>'")
        response = await call_next(request)
        if from_link:  # the studio page was opened from its ?token= link: later requests carry the cookie
            response.set_cookie(COOKIE, token, httponly=True, samesite="strict")
        return response
