def includeme(config):
    config.add_route("apidocs.index", "/docs")
    config.add_route("apidocs.page", "/docs/{page}")
    config.add_route("apidocs.openapi", "/openapi.json")
