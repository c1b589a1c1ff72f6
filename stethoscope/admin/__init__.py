def includeme(config):
    config.add_route("admin.home", "/admin")
    config.add_route("admin.users", "/admin/users")
    config.add_route("admin.user", "/admin/users/{username}")
    config.add_route("admin.user.tokens", "/admin/users/{username}/tokens")
    config.add_route(
        "admin.user.token", "/admin/users/{username}/tokens/{token_id:\\d+}"
    )
    config.add_route("admin.tokens", "/admin/gateway_tokens")
    config.add_route("admin.token", "/admin/gateway_tokens/{token_id:\\d+}")
    config.scan(".views")
