"""Security headers on every response, HTML and JSON alike."""

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)

HEADERS = [
    ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),
    ("X-Frame-Options", "DENY"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
]
# Residents' whereabouts must not linger in shared or browser caches.
NO_STORE = ("Cache-Control", "no-store")
HSTS = ("Strict-Transport-Security", "max-age=31536000")

# Every combination, built once: these are added to every response.
_CACHEABLE = (tuple(HEADERS), (*HEADERS, HSTS))
_NOT_STORED = ((*HEADERS, NO_STORE), (*HEADERS, NO_STORE, HSTS))


def security_headers(
    path_info: str, *, https: bool, cache_control: bool = False
) -> tuple[tuple[str, str], ...]:
    """The security headers of a response to ``path_info`` (the raw WSGI
    path): no-store unless static or with a Cache-Control of its own, HSTS
    over HTTPS only. The tween below and the ingest fast path, which answers
    before Pyramid, both add these."""
    if cache_control or path_info.startswith("/static/"):
        return _CACHEABLE[https]
    return _NOT_STORED[https]


def security_headers_tween_factory(handler, registry):
    def security_headers_tween(request):
        response = handler(request)
        # Extending the header list directly: this runs on every ingest
        # POST, and webob's header dict would cost more than the headers.
        # The raw path: request.path_info decodes it on every call, and
        # raises for one that is not UTF-8 (answered 400 by ops.errors).
        response.headerlist.extend(
            security_headers(
                request.environ.get("PATH_INFO", ""),
                https=request.scheme == "https",
                cache_control="Cache-Control" in response.headers,
            )
        )
        return response

    return security_headers_tween
