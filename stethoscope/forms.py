"""What the server-rendered pages' forms share (stethoscope.pages declares
the pages themselves).

A form POSTs with the session's CSRF token. A change made answers with a
redirect back to a page and a flash message (POST-redirect-GET:
``redirect``). A change the service refuses shows the form again with the
reason beside it (``refuse``, ``reason``), or, on a form that redirects
either way, in a flash message (``refuse_and_flash``); nothing is written.
"""

from pyramid.httpexceptions import HTTPSeeOther

from .errors import Invalid, ServiceError


def actor(request) -> str:
    """Who acts, as a row's ``created_by`` (or ``activated_by``) names them."""
    return request.authenticated_userid or "-"


def refuse(request, status: int = 400) -> None:
    """Answer ``status`` and write nothing.

    The services check before they change anything; dooming the transaction
    makes "nothing written" hold whatever a service did first.
    """
    request.tm.doom()
    request.response.status = status


def refuse_and_flash(request, message: str, queue: str = "") -> None:
    """Write nothing, and say why in a flash message: a refusal of a form
    that answers with a redirect either way."""
    request.tm.doom()
    request.session.flash(message, queue=queue)


def reason(exc: ServiceError) -> str:
    """A refusal as shown beside its form: the field's complaint, without the
    field's name (the form says which field it is)."""
    return exc.errors[0].message if isinstance(exc, Invalid) else exc.message


def redirect(request, route_name: str, **kw) -> HTTPSeeOther:
    """See Other: the page of ``route_name`` (``route_url``'s arguments)."""
    return HTTPSeeOther(location=request.route_url(route_name, **kw))
