"""One way to declare a server-rendered page: route, method, template, permission.

The HTML counterpart of ``stethoscope.endpoints.endpoint``::

    @page("admin.users", ADMIN, "stethoscope:admin/templates/users.jinja2")
    def users_page(request):
        return {...}

    @page("admin.users", ADMIN, USERS_TEMPLATE, request_method="POST")
    def create_user_form(request):
        ...

A page returns the template's context (or a response, e.g. a redirect).
Forms are read with ``stethoscope.ops.params.form_text``; errors are shown
next to the form that caused them by rendering the page again.
"""

from pyramid.view import view_config


def page(route_name: str, permission: str, template: str, **options) -> view_config:
    """``@view_config`` for a page rendered from ``template`` (GET unless
    ``request_method`` says otherwise)."""
    options.setdefault("request_method", "GET")
    return view_config(
        route_name=route_name, permission=permission, renderer=template, **options
    )
