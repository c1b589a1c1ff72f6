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


def security_headers_tween_factory(handler, registry):
    def security_headers_tween(request):
        response = handler(request)
        # Appending to the header list directly: this runs on every ingest
        # POST, and webob's header dict would cost more than the headers.
        headers = response.headerlist
        headers.extend(HEADERS)
        # The raw path: request.path_info decodes it on every call, and
        # raises for one that is not UTF-8 (answered 400 by ops.errors).
        if (
            not request.environ.get("PATH_INFO", "").startswith("/static/")
            and "Cache-Control" not in response.headers
        ):
            headers.append(NO_STORE)
        if request.scheme == "https":
            headers.append(HSTS)
        return response

    return security_headers_tween
