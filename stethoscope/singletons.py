"""The process-wide objects an app keeps in its Pyramid registry, named once.

Each is made at start-up by the ``includeme`` of the feature named beside
it and shared by every request and thread of the process: read it as
``registry[DATABASE]``. Anything made per request is a service instead
(``request.find_service``).
"""

# ops: the Redis client, or None (RedisClient)
REDIS = "stethoscope.redis"
# ops: the process's metrics (Metrics)
METRICS = "stethoscope.metrics"
# ops: unexpected errors sent to the webhook (ErrorNotifier)
ERROR_NOTIFIER = "stethoscope.ops.error_notifier"
# ops: what /health asks besides the database
HEALTH_MEMBERS = "stethoscope.health.members"
# db: the engine and its session factory (Database)
DATABASE = "stethoscope.database"
# security: proxies whose X-Forwarded-For is believed
TRUSTED_PROXIES = "stethoscope.trusted_proxies"
# security: server-side login sessions and the gateway token cache
SESSIONS = "stethoscope.sessions"
TOKEN_CACHE = "stethoscope.token_cache"
# accounts: password hashing and the login throttle
PASSWORDS = "stethoscope.passwords"
LOGIN_THROTTLE = "stethoscope.login_throttle"
# ingest: its limits, the deduplicator, the group writer (or None) and the
# gateways' and badges' activity
INGEST_LIMITS = "stethoscope.ingest.limits"
DEDUPLICATOR = "stethoscope.deduplicator"
INGEST_WRITER = "stethoscope.ingest.writer"
ACTIVITY = "stethoscope.activity"
# learning: stored model versions and each site's active model
MODEL_STORE = "stethoscope.model_store"
ACTIVE_MODELS = "stethoscope.active_models"
# locating: the house facts with the readings' room probabilities, and the
# finished days, kept per process
LOCATING_FACTS = "stethoscope.locating.facts"
LOCATING_DAYS = "stethoscope.locating.days"
# alerts: the evaluator on its schedule
ALERTS_EVALUATOR = "stethoscope.alerts.evaluator"
# apidocs: the OpenAPI document, serialised
OPENAPI_DOCUMENT = "stethoscope.apidocs.openapi"
