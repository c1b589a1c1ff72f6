from zope.interface import Attribute, Interface


class IDeduplicator(Interface):
    """Decides whether a badge advertisement is new within the window.

    A claim is provisional until the transaction that stores the reading
    commits: ``confirm`` is called after commit and ``release`` after a failed
    commit or an abort, so that a retried request, or the gateway's own
    retry, is never answered as a duplicate of a reading that was not stored.
    """

    window_ms = Attribute("How long an advertisement stays claimed, ms.")
    pending_wait_ms = Attribute(
        "How long ``claim`` waits for another request's uncommitted claim, ms."
    )

    def claim(fingerprint, wait_until=None):
        """Claim ``fingerprint``; return a Claim, or None for a duplicate.

        None only when the claim found is committed: a claim still pending
        is waited for until ``wait_until`` (``time.monotonic()``; default
        ``pending_wait_ms`` from now), then claimed if it was released or
        expired, or else ClaimPending (a 503) is raised."""

    def claimed(fingerprint):
        """Whether ``fingerprint`` is claimed now (diagnostics and tests)."""

    def known_duplicate(fingerprint):
        """True when ``claim`` would refuse ``fingerprint``, found out without
        claiming it: a committed claim this process knows, or (Redis) one a
        GET finds. False means "ask claim", not "new"."""

    def known_here(fingerprint):
        """``known_duplicate`` without asking anyone: what this process
        knows. False means "ask claim", not "new"."""

    def confirm(claim):
        """The reading of ``claim`` is committed."""

    def release(claim):
        """The reading of ``claim`` was not stored: forget the claim."""

    def status():
        """A dict for the health page: backend, reachability, counters."""
