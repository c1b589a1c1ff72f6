from .services import AuditService


def includeme(config):
    config.register_service_factory(
        lambda context, request: AuditService(request.db), AuditService
    )
    config.add_route("admin.audit", "/admin/audit")
