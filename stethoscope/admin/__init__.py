from ..routes import add_routes

ROUTES = {
    "admin.home": "/admin",
    "admin.users": "/admin/users",
    "admin.user": "/admin/users/{username}",
    "admin.user.tokens": "/admin/users/{username}/tokens",
    "admin.user.token": "/admin/users/{username}/tokens/{token_id:\\d+}",
    "admin.tokens": "/admin/gateway_tokens",
    "admin.token": "/admin/gateway_tokens/{token_id:\\d+}",
}


def includeme(config):
    add_routes(config, ROUTES)
    config.scan(".views")
