"""Settings for the detection portal, read from environment variables.

With no variable set, the portal runs in its embedded default: SQLite in the
project folder, a development secret key and 127.0.0.1 only. Setting
PORTAL_ENV=production turns on the deployment checks and rejects a start
without SECRET_KEY and ALLOWED_HOSTS.
"""

from pathlib import Path

import dj_database_url
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from portal.env import env_bool, env_choice, env_float, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent

DEVELOPMENT_SECRET_KEY = "development-only-secret-key-do-not-use-in-production"


PORTAL_ENV = env_choice("PORTAL_ENV", "development", ("development", "production"))
PRODUCTION = PORTAL_ENV == "production"

SECRET_KEY = env_str("SECRET_KEY")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", [])
if PRODUCTION:
    if not SECRET_KEY or SECRET_KEY == DEVELOPMENT_SECRET_KEY or len(SECRET_KEY) < 32:
        raise ImproperlyConfigured(
            "SECRET_KEY is missing, too short or the development key in production; set it "
            "(or SECRET_KEY_FILE) to a random value of at least 32 characters, for example "
            "the output of `python -c 'import secrets; print(secrets.token_urlsafe(50))'`."
        )
    if not ALLOWED_HOSTS:
        raise ImproperlyConfigured(
            "ALLOWED_HOSTS is missing for production; set it to the "
            "comma-separated host names the portal is served under."
        )
else:
    SECRET_KEY = SECRET_KEY or DEVELOPMENT_SECRET_KEY
    ALLOWED_HOSTS = ALLOWED_HOSTS or ["127.0.0.1", "localhost", "[::1]"]

DEBUG = env_bool("DEBUG", default=not PRODUCTION)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "reversion",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "csp",
    "portal.health",
    "detections",
    "playbooks",
    "accounts",
]

MIDDLEWARE = [
    # First, so that probes get a response before host validation and the HTTPS
    # redirect, and stay out of the request log.
    "portal.health.middleware.HealthCheckMiddleware",
    "portal.middleware.RequestLogMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    # Before CSRF, whose check reads the body of a form POST.
    "portal.middleware.RequestSizeLimitMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, so that every other middleware still handles the responses it serves.
    "detections.cached_responses.AnonymousCacheMiddleware",
]

if PRODUCTION:
    # WhiteNoise serves the collected static files; in development Django's
    # staticfiles app serves them from the source folders instead.
    MIDDLEWARE.insert(
        MIDDLEWARE.index("django.middleware.security.SecurityMiddleware") + 1,
        "whitenoise.middleware.WhiteNoiseMiddleware",
    )

ROOT_URLCONF = "portal.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "portal.wsgi.application"

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        # Seconds a connection is reused across requests; the health check tests a
        # reused connection first, so one lost in a database restart is replaced.
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60 if PRODUCTION else 0, minimum=0),
        conn_health_checks=True,
    )
}
# The password apart from the URL, so that it can come from a secret file.
DATABASE_PASSWORD = env_str("DATABASE_PASSWORD")
if DATABASE_PASSWORD:
    DATABASES["default"]["PASSWORD"] = DATABASE_PASSWORD
# Seconds a new PostgreSQL connection may take. With the server down, a request fails
# with 503 after this long instead of waiting for the operating system's TCP timeout.
DATABASE_CONNECT_TIMEOUT = env_int("DATABASE_CONNECT_TIMEOUT", 5, minimum=1)
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault(
        "connect_timeout", DATABASE_CONNECT_TIMEOUT
    )
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web process, the worker and commands share one SQLite file. Writers wait
    # up to 20 seconds for the lock instead of SQLite's default 5, and a transaction
    # takes the write lock when it starts, so two writers cannot deadlock on upgrade.
    DATABASES["default"].setdefault("OPTIONS", {}).update(timeout=20, transaction_mode="IMMEDIATE")

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / "staticfiles"), from_file=False))
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}

# Folder of detection-as-code files that `load_content` reads when given no path.
CONTENT_DIR = Path(env_str("PORTAL_CONTENT_DIR", str(BASE_DIR / "content"), from_file=False))

# With true, anonymous users, API clients and signed-in users without the view
# permission also see draft, review and deprecated content. Off by default: only the
# viewer, author and reviewer groups and superusers see content that is not published.
PORTAL_SHOW_UNPUBLISHED = env_bool("PORTAL_SHOW_UNPUBLISHED", False)

AUTHENTICATION_BACKENDS = ["accounts.backends.RateLimitedModelBackend"]
# Failed sign-ins allowed per username and per client IP address within the window
# (seconds) before the login is rejected with 429 until the window ends. Counted in
# CACHES["default"], which must be shared by all web processes in production.
LOGIN_MAX_FAILURES_PER_USERNAME = env_int("LOGIN_MAX_FAILURES_PER_USERNAME", 5, minimum=1)
LOGIN_MAX_FAILURES_PER_IP = env_int("LOGIN_MAX_FAILURES_PER_IP", 20, minimum=1)
LOGIN_FAILURE_WINDOW = env_int("LOGIN_FAILURE_WINDOW", 900, minimum=1)

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/"

# The shared cache: Redis at REDIS_URL, which every web process uses for API
# throttling and login limits. Without it each process counts on its own.
REDIS_URL = env_str("REDIS_URL")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "portal.cache.FailOpenRedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "portal",
            # Seconds to connect and to wait for a reply. With Redis down, a cache
            # call fails after this and the request goes on without the cache.
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Seconds a cached API response is kept. Every committed change to shown content
# replaces the key's content stamp first (detections.response_cache), so this only
# bounds how long a response stays stale if a process dies between its commit and
# that replacement.
API_CACHE_TIMEOUT = env_int("API_CACHE_TIMEOUT", 300, minimum=1)

# API throttling rates ("number/period", period s, m, h or d), counted per user for
# signed-in clients and per client address for anonymous ones, in fixed windows of
# the period (portal.throttling).
THROTTLE_ANON_RATE = env_str("THROTTLE_ANON_RATE", "120/minute", from_file=False)
THROTTLE_USER_RATE = env_str("THROTTLE_USER_RATE", "600/minute", from_file=False)
# Reverse proxies in front of the web process that append to X-Forwarded-For. With 0
# no header is trusted and clients are counted by the connecting address. With N, the
# client address is the N-th entry from the right, so a forged leftmost entry changes
# nothing.
NUM_PROXIES = env_int("NUM_PROXIES", 0, minimum=0)

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    # The token class comes first, so a request without credentials that needs them
    # gets 401 with `WWW-Authenticate: Token` rather than 403.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_THROTTLE_CLASSES": [
        "portal.throttling.ClientAddressRateThrottle",
        "portal.throttling.SignedInUserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {"anon": THROTTLE_ANON_RATE, "user": THROTTLE_USER_RATE},
    "NUM_PROXIES": NUM_PROXIES,
    # The browsable API is a development aid, so production renders JSON only.
    "DEFAULT_RENDERER_CLASSES": (
        ["rest_framework.renderers.JSONRenderer"]
        if PRODUCTION
        else [
            "rest_framework.renderers.JSONRenderer",
            "rest_framework.renderers.BrowsableAPIRenderer",
        ]
    ),
}

# Largest request body outside file uploads (Django's default, 2.5 MiB). Larger
# requests get 413 naming this setting; the Sigma upload API has its own limit,
# IMPORT_MAX_UPLOAD_BYTES.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 2621440, minimum=1024)

# A bench-only view at /bench/ping/ that returns a small JSON without touching the
# database: the ceiling that bench/api compares the real views with.
BENCH_ENDPOINTS = env_bool("BENCH_ENDPOINTS", False)

SPECTACULAR_SETTINGS = {
    "TITLE": "Detection content portal API",
    "DESCRIPTION": "Detections with their ATT&CK mapping, queries, Sigma rules and tests.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Detection.severity and .confidence share one choice set, and Detection.status and
    # Render.status would otherwise both be named StatusEnum.
    "ENUM_NAME_OVERRIDES": {
        "LevelEnum": "detections.models.Detection.Level",
        "DetectionStatusEnum": "detections.models.Detection.Status",
        "RenderStatusEnum": "detections.models.Render.Status",
        "ValidationStatusEnum": "detections.models.ValidationRun.Status",
        "ExpectEnum": "detections.models.DetectionTest.Expectation",
        "DetectionOriginEnum": "detections.models.Detection.Origin",
        "TestOriginEnum": "detections.models.DetectionTest.Origin",
        "SigmaStatusEnum": "detections.models.Detection.SigmaStatus",
        "SigmaRuleKindEnum": "detections.models.SigmaRule.Kind",
    },
}

# Header that the TLS-terminating proxy sets, as "Header-Name: value"; Django then
# treats requests carrying it as HTTPS. Empty when no proxy sets such a header,
# because a client could otherwise send it.
_proxy_ssl_header = env_str(
    "SECURE_PROXY_SSL_HEADER", "X-Forwarded-Proto: https" if PRODUCTION else "", from_file=False
)
if _proxy_ssl_header:
    _header_name, _separator, _header_value = _proxy_ssl_header.partition(":")
    if not _separator or not _header_name.strip() or not _header_value.strip():
        raise ImproperlyConfigured(
            f"SECURE_PROXY_SSL_HEADER={_proxy_ssl_header!r} is invalid; write it as "
            "'X-Forwarded-Proto: https', or leave it empty when no proxy sets it."
        )
    SECURE_PROXY_SSL_HEADER = (
        "HTTP_" + _header_name.strip().upper().replace("-", "_"),
        _header_value.strip(),
    )
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", PRODUCTION)
# Probes come over plain HTTP from inside the network.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
SESSION_COOKIE_SECURE = PRODUCTION
CSRF_COOKIE_SECURE = PRODUCTION
SESSION_COOKIE_HTTPONLY = True
SECURE_HSTS_SECONDS = env_int("HSTS_SECONDS", 31536000 if PRODUCTION else 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = PRODUCTION
SECURE_HSTS_PRELOAD = PRODUCTION
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"

# Content Security Policy (django-csp 4): scripts, styles and everything else only
# from this origin, so an injected inline script or event handler does not run.
# Images may also be data: URIs (the favicon and Swagger UI's icons).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

# json: one JSON object per line, for log collectors; text: lines for people.
LOG_FORMAT = env_choice("LOG_FORMAT", "json" if PRODUCTION else "text", ("json", "text"))
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact": {"()": "portal.logs.RedactFilter"}},
    "formatters": {
        "text": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
            "timestamp": False,
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["redact"],
        }
    },
    "root": {
        "handlers": ["console"],
        "level": env_str("PORTAL_LOG_LEVEL", "INFO", from_file=False),
    },
    "loggers": {
        # The request log middleware writes one line per request, and Django's own
        # warning lines for 4xx responses would repeat them.
        "django.request": {"level": "ERROR"},
        # portal.celery keeps Celery from replacing the root handlers in the worker.
        "celery": {"level": "INFO"},
    },
}

# Seconds between worker heartbeats, and the age past which /readyz reports that no
# worker is alive.
WORKER_HEARTBEAT_INTERVAL = env_int("WORKER_HEARTBEAT_INTERVAL", 15, minimum=1)
WORKER_HEARTBEAT_MAX_AGE = env_int("WORKER_HEARTBEAT_MAX_AGE", 60, minimum=2)


def _target(
    label,
    backend,
    packages,
    *,
    pipelines=(),
    output_format="default",
    extension="txt",
    lexer="text",
    cli=None,
):
    return {
        "label": label,
        "backend": backend,
        "pipelines": list(pipelines),
        "format": output_format,
        "packages": list(packages),
        "extension": extension,
        "lexer": lexer,
        "cli": cli,
    }


SYSMON = "sigma.pipelines.sysmon:sysmon_pipeline"
ECS_WINDOWS = "sigma.pipelines.elasticsearch.windows:ecs_windows"
SPLUNK_BACKEND = "sigma.backends.splunk:SplunkBackend"
SPLUNK_PIPELINES = (SYSMON, "sigma.pipelines.splunk:splunk_windows_pipeline")
SPLUNK_PACKAGES = ("pysigma-backend-splunk", "pysigma-pipeline-sysmon")
ELASTIC_PACKAGES = ("pysigma-backend-elasticsearch", "pysigma-pipeline-sysmon")
KUSTO_BACKEND = "sigma.backends.kusto:KustoBackend"

# Render targets: a pySigma backend ("module:Class"), the pipelines applied before it
# ("module:function", merged by their priority as sigma-cli does), the backend's
# output format, and the sigma-cli target and pipeline names that give the same
# output. Targets are defined here only; requests can never name a pipeline file.
RENDER_TARGETS = {
    "splunk": _target(
        "Splunk SPL",
        SPLUNK_BACKEND,
        SPLUNK_PACKAGES,
        pipelines=SPLUNK_PIPELINES,
        extension="spl",
        lexer="spl",
        cli=("splunk", ["sysmon", "splunk_windows"]),
    ),
    "splunk_savedsearches": _target(
        "Splunk savedsearches.conf",
        SPLUNK_BACKEND,
        SPLUNK_PACKAGES,
        pipelines=SPLUNK_PIPELINES,
        output_format="savedsearches",
        extension="conf",
        lexer="ini",
        cli=("splunk", ["sysmon", "splunk_windows"]),
    ),
    "elasticsearch_lucene": _target(
        "Elasticsearch Lucene",
        "sigma.backends.elasticsearch:LuceneBackend",
        ELASTIC_PACKAGES,
        pipelines=(SYSMON, ECS_WINDOWS),
        extension="lucene",
        cli=("lucene", ["sysmon", "ecs_windows"]),
    ),
    "elasticsearch_esql": _target(
        "Elasticsearch ES|QL",
        "sigma.backends.elasticsearch:ESQLBackend",
        ELASTIC_PACKAGES,
        pipelines=(SYSMON, ECS_WINDOWS),
        extension="esql",
        lexer="sql",
        cli=("esql", ["sysmon", "ecs_windows"]),
    ),
    "elasticsearch_eql": _target(
        "Elasticsearch EQL",
        "sigma.backends.elasticsearch:EqlBackend",
        ELASTIC_PACKAGES,
        pipelines=(SYSMON, ECS_WINDOWS),
        extension="eql",
        cli=("eql", ["sysmon", "ecs_windows"]),
    ),
    "opensearch_lucene": _target(
        "OpenSearch Lucene",
        "sigma.backends.opensearch:OpensearchLuceneBackend",
        ("pysigma-backend-opensearch", "pysigma-backend-elasticsearch", "pysigma-pipeline-sysmon"),
        pipelines=(SYSMON, ECS_WINDOWS),
        extension="lucene",
        cli=("opensearch_lucene", ["sysmon", "ecs_windows"]),
    ),
    "sentinel_kql": _target(
        "Microsoft Sentinel KQL (ASIM)",
        KUSTO_BACKEND,
        ("pysigma-backend-kusto",),
        pipelines=("sigma.pipelines.sentinelasim:sentinel_asim_pipeline",),
        extension="kql",
        lexer="kql",
        cli=("kusto", ["sentinel_asim"]),
    ),
    "defender_kql": _target(
        "Microsoft Defender XDR KQL",
        KUSTO_BACKEND,
        ("pysigma-backend-kusto",),
        pipelines=("sigma.pipelines.microsoftxdr:microsoft_xdr_pipeline",),
        extension="kql",
        lexer="kql",
        cli=("kusto", ["microsoft_xdr"]),
    ),
    "qradar_aql": _target(
        "IBM QRadar AQL",
        "sigma.backends.QRadarAQL:QRadarAQLBackend",
        ("pysigma-backend-qradar-community",),
        pipelines=("sigma.pipelines.QRadarAQL:QRadarAQL_fields_pipeline",),
        extension="aql",
        lexer="sql",
        cli=("qradar-aql-community", ["qradar-aql-fields"]),
    ),
    "crowdstrike_logscale": _target(
        "CrowdStrike Falcon LogScale",
        "sigma.backends.crowdstrike:LogScaleBackend",
        ("pysigma-backend-crowdstrike",),
        pipelines=("sigma.pipelines.crowdstrike:crowdstrike_falcon_pipeline",),
        extension="logscale",
        cli=("log_scale", ["crowdstrike_falcon"]),
    ),
    "sentinelone_pq": _target(
        "SentinelOne PowerQuery",
        "sigma.backends.sentinelone_pq:SentinelOnePQBackend",
        ("pysigma-backend-sentinelone-pq",),
        extension="pq",
        cli=("sentinel_one_pq", []),
    ),
    "grafana_loki": _target(
        "Grafana Loki LogQL",
        "sigma.backends.loki:LogQLBackend",
        ("pysigma-backend-loki",),
        extension="logql",
        cli=("loki", []),
    ),
    "sqlite": _target(
        "SQLite SQL",
        "sigma.backends.sqlite:sqliteBackend",
        ("pysigma-backend-sqlite",),
        extension="sql",
        lexer="sql",
        cli=("sqlite", []),
    ),
    "duckdb": _target(
        "DuckDB SQL",
        "sigma_backend_duckdb:DuckDBBackend",
        ("pysigma-backend-duckdb",),
        extension="sql",
        lexer="sql",
    ),
}

# Seconds a render task may run. At the soft limit the current render fails with a
# timeout and the rest of its batch is queued again. At the hard limit the worker
# process is killed and the batch is redelivered.
RENDER_SOFT_TIME_LIMIT = env_int("RENDER_SOFT_TIME_LIMIT", 120)
RENDER_HARD_TIME_LIMIT = env_int("RENDER_HARD_TIME_LIMIT", 150)
RENDER_BATCH_SIZE = env_int("RENDER_BATCH_SIZE", 100)
# A render whose worker died this many times is failed instead of retried.
RENDER_MAX_ATTEMPTS = 3
# Seconds past the hard limit before a running render counts as abandoned by a dead
# worker, allowing for clock differences between workers.
RENDER_ABANDONED_MARGIN = env_int("RENDER_ABANDONED_MARGIN", 30)
# The render target of the live preview in the Sigma rule edit form, and the seconds
# after which a stored preview is deleted.
PREVIEW_TARGET = env_str("PREVIEW_TARGET", "splunk", from_file=False)
PREVIEW_MAX_AGE_SECONDS = env_int("PREVIEW_MAX_AGE_SECONDS", 3600)

# Validation runs: a run executes every test of one detection.
VALIDATION_SOFT_TIME_LIMIT = env_int("VALIDATION_SOFT_TIME_LIMIT", 600)
VALIDATION_HARD_TIME_LIMIT = env_int("VALIDATION_HARD_TIME_LIMIT", 660)
VALIDATION_ABANDONED_MARGIN = env_int("VALIDATION_ABANDONED_MARGIN", 60)
# Celery beat re-validates published detections this often (seconds; 0 turns it off).
VALIDATION_SCHEDULE_SECONDS = env_int("VALIDATION_SCHEDULE_SECONDS", 24 * 3600)

# pySigma's ATT&CK lookups read this STIX file instead of downloading MITRE's data.
SIGMA_ATTACK_STIX_FILE = Path(
    env_str("SIGMA_ATTACK_STIX_FILE", str(BASE_DIR / "content" / "attack-stix.json"), from_file=False)
)
SIGMA_CACHE_DIR = Path(env_str("SIGMA_CACHE_DIR", str(BASE_DIR / "var" / "pysigma-cache"), from_file=False))

# Celery: Redis (or any kombu URL) from CELERY_BROKER_URL. Without it, kombu's
# filesystem transport passes messages through a folder, so the embedded default
# still runs a separate worker process with no server to install.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://")
CELERY_BROKER_FOLDER = Path(env_str("CELERY_BROKER_FOLDER", str(BASE_DIR / "var" / "broker"), from_file=False))
if CELERY_BROKER_URL.startswith("filesystem://"):
    for _folder in ("queue", "processed", "control"):
        (CELERY_BROKER_FOLDER / _folder).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_BROKER_FOLDER / "queue"),
        "data_folder_out": str(CELERY_BROKER_FOLDER / "queue"),
        "processed_folder": str(CELERY_BROKER_FOLDER / "processed"),
        "store_processed": False,
        "control_folder": str(CELERY_BROKER_FOLDER / "control"),
        # Seconds between checks of the queue folder: the latency floor of a render.
        "polling_interval": 0.2,
    }
else:
    # Redis redelivers a message not acknowledged within this many seconds; it must
    # exceed the longest task so a running task is not delivered twice.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND") or None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ALWAYS_EAGER = False
CELERY_TASK_DEFAULT_QUEUE = "render"
CELERY_TASK_ROUTES = {
    "detections.render_*": {"queue": "render"},
    "detections.validate_*": {"queue": "validate"},
}
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Publishing fails fast when the broker is down instead of blocking a web request.
CELERY_BROKER_CONNECTION_TIMEOUT = 5
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5}
# Commit mode of worker connections on PostgreSQL; see portal.celery.
WORKER_SYNCHRONOUS_COMMIT = env_str("WORKER_SYNCHRONOUS_COMMIT", "off", from_file=False)
if WORKER_SYNCHRONOUS_COMMIT not in {"on", "off", "local", "remote_write", "remote_apply"}:
    raise ImproperlyConfigured(
        f"WORKER_SYNCHRONOUS_COMMIT={WORKER_SYNCHRONOUS_COMMIT!r} is invalid; use on, off, "
        "local, remote_write or remote_apply (PostgreSQL's synchronous_commit values)."
    )
CELERY_BEAT_SCHEDULE = {
    "recover-validation-runs": {
        "task": "detections.validate_recover",
        "schedule": float(VALIDATION_ABANDONED_MARGIN),
    },
}
if VALIDATION_SCHEDULE_SECONDS > 0:
    CELERY_BEAT_SCHEDULE["validate-published-detections"] = {
        "task": "detections.validate_published",
        "schedule": float(VALIDATION_SCHEDULE_SECONDS),
    }

# Splunk engine for validation runs (detections.validation.splunk): events go to the test
# index through the HTTP Event Collector, and searches run as REST search jobs. Validation
# on Splunk is unavailable until both URLs and both tokens are set.
SPLUNK_URL = env_str("SPLUNK_URL", "", from_file=False)
SPLUNK_TOKEN = env_str("SPLUNK_TOKEN")
SPLUNK_HEC_URL = env_str("SPLUNK_HEC_URL", "", from_file=False)
SPLUNK_HEC_TOKEN = env_str("SPLUNK_HEC_TOKEN")
SPLUNK_TEST_INDEX = env_str("SPLUNK_TEST_INDEX", "portal_validation", from_file=False)
# true verifies certificates against certifi's CA bundle, false turns verification off,
# and any other value is the path of a CA bundle file or folder.
SPLUNK_VERIFY_TLS = env_str("SPLUNK_VERIFY_TLS", "true", from_file=False)
# Seconds per HTTP call, and seconds to wait for a search job or for sent events to
# become searchable.
SPLUNK_TIMEOUT = env_float("SPLUNK_TIMEOUT", 30)
SPLUNK_SEARCH_TIMEOUT = env_float("SPLUNK_SEARCH_TIMEOUT", 120)
# Seconds between two status checks of a search job.
SPLUNK_POLL_INTERVAL = env_float("SPLUNK_POLL_INTERVAL", 0.5)

# Importers: import_sigma, import_atomics, import_attack and POST /api/v1/imports/sigma/.
# Every file from outside is checked against these limits before pySigma or the
# database sees it; a file over a limit fails with the reason and the rest go on.
IMPORT_MAX_FILE_BYTES = env_int("IMPORT_MAX_FILE_BYTES", 1024 * 1024)
# Deepest nesting of YAML lists and mappings, and of parentheses and `not` in a Sigma
# condition. pySigma 1.5 raises RecursionError at about 200 chained `not`.
IMPORT_MAX_NESTING = env_int("IMPORT_MAX_NESTING", 64)
# Most entries in one YAML list or mapping. SigmaHQ's longest list has 4,432 values
# (driver hashes, August 2026).
IMPORT_MAX_VALUES = env_int("IMPORT_MAX_VALUES", 10000)
# Most entries, and most bytes once uncompressed, in one ZIP archive.
IMPORT_MAX_ARCHIVE_ENTRIES = env_int("IMPORT_MAX_ARCHIVE_ENTRIES", 20000)
IMPORT_MAX_ARCHIVE_BYTES = env_int("IMPORT_MAX_ARCHIVE_BYTES", 200 * 1024 * 1024)
# Largest request body the upload API accepts.
IMPORT_MAX_UPLOAD_BYTES = env_int("IMPORT_MAX_UPLOAD_BYTES", 50 * 1024 * 1024)
# Largest STIX bundle file import_attack reads (MITRE's enterprise bundle is about 50 MiB).
IMPORT_MAX_STIX_BYTES = env_int("IMPORT_MAX_STIX_BYTES", 512 * 1024 * 1024)
# Rule files written per database transaction.
IMPORT_CHUNK_SIZE = env_int("IMPORT_CHUNK_SIZE", 500)
# Workflow status of detections that import_sigma creates. Rules whose Sigma status is
# deprecated or unsupported start as `deprecated` whatever this says.
IMPORT_SIGMA_STATUS = env_str("IMPORT_SIGMA_STATUS", "draft", from_file=False)
if IMPORT_SIGMA_STATUS not in {"draft", "review", "published"}:
    raise ImproperlyConfigured(
        f"IMPORT_SIGMA_STATUS={IMPORT_SIGMA_STATUS!r} is invalid; use draft, review or published."
    )
