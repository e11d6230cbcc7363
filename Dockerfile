FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PORTAL_ENV=production
WORKDIR /app

COPY pyproject.toml requirements.lock README.md ./
COPY portal ./portal
COPY detections ./detections
COPY playbooks ./playbooks
RUN pip install --no-cache-dir -c requirements.lock ".[production]"

COPY . .
# collectstatic needs settings to import; these values exist only for the build.
RUN SECRET_KEY=build-only-secret-key-build-only-secret-key \
    ALLOWED_HOSTS=build python manage.py collectstatic --noinput

RUN useradd --system --uid 10001 portal \
    && mkdir -p /app/var \
    && chown portal /app/var
USER portal
EXPOSE 8000
# docker-compose.yml runs the same image as web, worker, beat and migrate.
CMD ["gunicorn", "portal.wsgi:application", "--bind=0.0.0.0:8000", "--workers=3"]
