# One image for web, worker and beat. CPU build of torch from PyTorch's own index.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu \
    DJANGO_SETTINGS_MODULE=evalsite.settings VAR_DIR=/data/var MEDIA_ROOT=/data/media

RUN apt-get update && apt-get install -y --no-install-recommends libglib2.0-0 libgomp1 \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY requirements.txt requirements-nodeps.txt ./
RUN pip install -r requirements.txt

COPY manage.py pyproject.toml ./
COPY evalsite/ evalsite/
COPY models/ models/
COPY ratings/ ratings/
COPY pipelines/ pipelines/
COPY fixtures/ fixtures/

RUN mkdir -p /data/var /data/media && useradd --create-home app && chown -R app /data
USER app
EXPOSE 8000
CMD ["gunicorn", "evalsite.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3", "--timeout", "120"]
