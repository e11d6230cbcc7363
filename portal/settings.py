"""Settings for the detection portal, read from environment variables.

With no variable set, the portal runs in its embedded default: SQLite in the
project folder, a development secret key and 127.0.0.1 only. Setting
PORTAL_ENV=production turns on the deployment checks and rejects a start
without SECRET_KEY and ALLOWED_HOSTS.
"""

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

DEVELOPMENT_SECRET_KEY = "development-only-secret-key-do-not-use-in-production"


def env_str(name: str, default: str = "") -> str:
    """Read a string variable, or the contents of the file named by NAME_FILE."""
    file_path = os.environ.get(f"{name}_FILE")
    if file_path:
        try:
            return Path(file_path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ImproperlyConfigured(
                f"{name}_FILE={file_path!r} cannot be read ({exc.strerror}); "
                f"point it at a readable file or set {name} instead."
            ) from exc
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean; use true or false.")


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


PORTAL_ENV = os.environ.get("PORTAL_ENV", "development").strip().lower()
if PORTAL_ENV not in {"development", "production"}:
    raise ImproperlyConfigured(
        f"PORTAL_ENV={PORTAL_ENV!r} is not valid; use development or production."
    )
PRODUCTION = PORTAL_ENV == "production"

SECRET_KEY = env_str("SECRET_KEY")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", [])
if PRODUCTION:
    if not SECRET_KEY or SECRET_KEY == DEVELOPMENT_SECRET_KEY or len(SECRET_KEY) < 32:
        raise ImproperlyConfigured(
            "SECRET_KEY is missing or too short for production; set it (or "
            "SECRET_KEY_FILE) to a random value of at least 32 characters."
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
    "detections",
    "playbooks",
    "accounts",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

if PRODUCTION:
    # WhiteNoise serves the collected static files; in development Django's
    # staticfiles app serves them from the source folders instead.
    MIDDLEWARE.insert(1, "whitenoise.middleware.WhiteNoiseMiddleware")

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
        conn_max_age=int(os.environ.get("DATABASE_CONN_MAX_AGE", "60" if PRODUCTION else "0")),
    )
}
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
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
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
CONTENT_DIR = Path(env_str("PORTAL_CONTENT_DIR", str(BASE_DIR / "content")))

# With true, anonymous users, API clients and signed-in users without the view
# permission also see draft, review and deprecated content. Off by default: only the
# viewer, author and reviewer groups and superusers see content that is not published.
PORTAL_SHOW_UNPUBLISHED = env_bool("PORTAL_SHOW_UNPUBLISHED", False)

AUTHENTICATION_BACKENDS = ["accounts.backends.RateLimitedModelBackend"]
# Failed sign-ins allowed per username and per client IP address within the window
# (seconds) before the login is rejected with 429 until the window ends. Counted in
# CACHES["default"], which must be shared by all web processes in production.
LOGIN_MAX_FAILURES_PER_USERNAME = int(os.environ.get("LOGIN_MAX_FAILURES_PER_USERNAME", "5"))
LOGIN_MAX_FAILURES_PER_IP = int(os.environ.get("LOGIN_MAX_FAILURES_PER_IP", "20"))
LOGIN_FAILURE_WINDOW = int(os.environ.get("LOGIN_FAILURE_WINDOW", "900"))

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/"

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
}

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

if PRODUCTION:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = int(os.environ.get("HSTS_SECONDS", "31536000"))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("PORTAL_LOG_LEVEL", "INFO")},
}


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
RENDER_SOFT_TIME_LIMIT = int(os.environ.get("RENDER_SOFT_TIME_LIMIT", "120"))
RENDER_HARD_TIME_LIMIT = int(os.environ.get("RENDER_HARD_TIME_LIMIT", "150"))
RENDER_BATCH_SIZE = int(os.environ.get("RENDER_BATCH_SIZE", "100"))
# A render whose worker died this many times is failed instead of retried.
RENDER_MAX_ATTEMPTS = 3
# Seconds past the hard limit before a running render counts as abandoned by a dead
# worker, allowing for clock differences between workers.
RENDER_ABANDONED_MARGIN = int(os.environ.get("RENDER_ABANDONED_MARGIN", "30"))
# The render target of the live preview in the Sigma rule edit form, and the seconds
# after which a stored preview is deleted.
PREVIEW_TARGET = env_str("PREVIEW_TARGET", "splunk")
PREVIEW_MAX_AGE_SECONDS = int(os.environ.get("PREVIEW_MAX_AGE_SECONDS", "3600"))

# Validation runs: a run executes every test of one detection.
VALIDATION_SOFT_TIME_LIMIT = int(os.environ.get("VALIDATION_SOFT_TIME_LIMIT", "600"))
VALIDATION_HARD_TIME_LIMIT = int(os.environ.get("VALIDATION_HARD_TIME_LIMIT", "660"))
VALIDATION_ABANDONED_MARGIN = int(os.environ.get("VALIDATION_ABANDONED_MARGIN", "60"))
# Celery beat re-validates published detections this often (seconds; 0 turns it off).
VALIDATION_SCHEDULE_SECONDS = int(os.environ.get("VALIDATION_SCHEDULE_SECONDS", str(24 * 3600)))

# pySigma's ATT&CK lookups read this STIX file instead of downloading MITRE's data.
SIGMA_ATTACK_STIX_FILE = Path(
    env_str("SIGMA_ATTACK_STIX_FILE", str(BASE_DIR / "content" / "attack-stix.json"))
)
SIGMA_CACHE_DIR = Path(env_str("SIGMA_CACHE_DIR", str(BASE_DIR / "var" / "pysigma-cache")))

# Celery: Redis (or any kombu URL) from CELERY_BROKER_URL. Without it, kombu's
# filesystem transport passes messages through a folder, so the embedded default
# still runs a separate worker process with no server to install.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://")
CELERY_BROKER_FOLDER = Path(env_str("CELERY_BROKER_FOLDER", str(BASE_DIR / "var" / "broker")))
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
WORKER_SYNCHRONOUS_COMMIT = env_str("WORKER_SYNCHRONOUS_COMMIT", "off")
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
SPLUNK_URL = os.environ.get("SPLUNK_URL", "")
SPLUNK_TOKEN = env_str("SPLUNK_TOKEN")
SPLUNK_HEC_URL = os.environ.get("SPLUNK_HEC_URL", "")
SPLUNK_HEC_TOKEN = env_str("SPLUNK_HEC_TOKEN")
SPLUNK_TEST_INDEX = os.environ.get("SPLUNK_TEST_INDEX", "portal_validation")
# true verifies certificates against certifi's CA bundle, false turns verification off,
# and any other value is the path of a CA bundle file or folder.
SPLUNK_VERIFY_TLS = os.environ.get("SPLUNK_VERIFY_TLS", "true")
# Seconds per HTTP call, and seconds to wait for a search job or for sent events to
# become searchable.
SPLUNK_TIMEOUT = float(os.environ.get("SPLUNK_TIMEOUT", "30"))
SPLUNK_SEARCH_TIMEOUT = float(os.environ.get("SPLUNK_SEARCH_TIMEOUT", "120"))
# Seconds between two status checks of a search job.
SPLUNK_POLL_INTERVAL = float(os.environ.get("SPLUNK_POLL_INTERVAL", "0.5"))

# Importers: import_sigma, import_atomics, import_attack and POST /api/v1/imports/sigma/.
# Every file from outside is checked against these limits before pySigma or the
# database sees it; a file over a limit fails with the reason and the rest go on.
IMPORT_MAX_FILE_BYTES = int(os.environ.get("IMPORT_MAX_FILE_BYTES", str(1024 * 1024)))
# Deepest nesting of YAML lists and mappings, and of parentheses and `not` in a Sigma
# condition. pySigma 1.5 raises RecursionError at about 200 chained `not`.
IMPORT_MAX_NESTING = int(os.environ.get("IMPORT_MAX_NESTING", "64"))
# Most entries in one YAML list or mapping. SigmaHQ's longest list has 4,432 values
# (driver hashes, August 2026).
IMPORT_MAX_VALUES = int(os.environ.get("IMPORT_MAX_VALUES", "10000"))
# Most entries, and most bytes once uncompressed, in one ZIP archive.
IMPORT_MAX_ARCHIVE_ENTRIES = int(os.environ.get("IMPORT_MAX_ARCHIVE_ENTRIES", "20000"))
IMPORT_MAX_ARCHIVE_BYTES = int(
    os.environ.get("IMPORT_MAX_ARCHIVE_BYTES", str(200 * 1024 * 1024))
)
# Largest request body the upload API accepts.
IMPORT_MAX_UPLOAD_BYTES = int(os.environ.get("IMPORT_MAX_UPLOAD_BYTES", str(50 * 1024 * 1024)))
# Largest STIX bundle file import_attack reads (MITRE's enterprise bundle is about 50 MiB).
IMPORT_MAX_STIX_BYTES = int(os.environ.get("IMPORT_MAX_STIX_BYTES", str(512 * 1024 * 1024)))
# Rule files written per database transaction.
IMPORT_CHUNK_SIZE = int(os.environ.get("IMPORT_CHUNK_SIZE", "500"))
# Workflow status of detections that import_sigma creates. Rules whose Sigma status is
# deprecated or unsupported start as `deprecated` whatever this says.
IMPORT_SIGMA_STATUS = env_str("IMPORT_SIGMA_STATUS", "draft")
if IMPORT_SIGMA_STATUS not in {"draft", "review", "published"}:
    raise ImproperlyConfigured(
        f"IMPORT_SIGMA_STATUS={IMPORT_SIGMA_STATUS!r} is invalid; use draft, review or published."
    )
