import functools

from ..audit.services import audited, record
from ..ops.ratelimit import MemoryRateLimiter, RedisRateLimiter
from ..singletons import LOGIN_THROTTLE, PASSWORDS, REDIS, SESSIONS
from .passwords import Passwords
from .services import LoginService, LoginThrottle, ThrottleLimits, UserService
from .tokens import UserTokenService


def login_service(context, request) -> LoginService:
    return LoginService(
        request.db,
        request.find_service(UserService),
        request.registry[SESSIONS],
        request.registry[LOGIN_THROTTLE],
        audit=functools.partial(record, request),
    )


def includeme(config):
    settings = config.registry.settings
    passwords = Passwords(settings["stethoscope.accounts.password_profile"])
    config.registry[PASSWORDS] = passwords
    limiter = MemoryRateLimiter()
    redis = config.registry.get(REDIS)
    if redis is not None:
        limiter = RedisRateLimiter(
            redis, limiter, settings["stethoscope.redis.retry_interval_ms"]
        )
    throttle = LoginThrottle(
        limiter,
        ThrottleLimits(
            per_user=settings["stethoscope.login.max_failures_per_user"],
            per_ip=settings["stethoscope.login.max_failures_per_ip"],
            window_s=settings["stethoscope.login.window_seconds"],
        ),
    )
    config.registry[LOGIN_THROTTLE] = throttle
    config.register_service_factory(audited(UserService, PASSWORDS), UserService)
    config.register_service_factory(login_service, LoginService)
    config.register_service_factory(audited(UserTokenService), UserTokenService)
    config.add_route("accounts.login", "/login")
    config.add_route("accounts.logout", "/logout")
    config.scan(".views")
