"""The permissions every view names, below every feature.

stethoscope.security decides who holds which (its root ACL); features only
name them, so they import this module and never the policy, which itself
builds on accounts and gateway tokens. NO_PERMISSION_REQUIRED marks the
deliberately public views; a view that names none gets ADMIN (the default
permission), so a page added without thought is closed, not open.
"""

from pyramid.security import NO_PERMISSION_REQUIRED

PUBLIC = NO_PERMISSION_REQUIRED
VIEW = "view"  # dashboard, current locations, live readings
VIEW_HISTORY = "view_history"  # where a badge was over a day, wearers' names
ADMIN = "admin"  # registry, training runs, models, users, tokens, audit
INGEST = "ingest"  # post readings
LOGGED_IN = "logged_in"  # log out, own account
