import time


def wait_for(predicate, what: str, timeout: float = 10.0, interval: float = 0.01):
    """Poll ``predicate`` until it is true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval)


def find_service(wsgi_app, iface):
    """Look up a registered service of ``wsgi_app`` as a request would."""
    from pyramid.scripting import prepare

    env = prepare(registry=wsgi_app.registry)
    try:
        return env["request"].find_service(iface)
    finally:
        env["closer"]()
