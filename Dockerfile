# One image for every service (engine CLI today; daphne web and celery workers next).
FROM python:3.11-slim-bookworm
RUN apt-get update && apt-get install -y --no-install-recommends make \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY requirements.txt requirements-dev.txt ./
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
ENV PIXEL_CACHE_DIR=/app/.cache/frames
CMD ["python", "-m", "engine", "--help"]
