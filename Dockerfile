# GPU image for training, tuning and prediction (TensorFlow with CUDA from pip wheels).
# Build: docker build -t satx .    Run: docker run --gpus all -v "$PWD/data:/data" satx \
#   tools.make_records --input=/data/tiles --output=/data/records
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TF_CPP_MIN_LOG_LEVEL=2

WORKDIR /app
COPY pyproject.toml README.md ./
COPY satx ./satx
COPY tools ./tools
# Version ranges are pinned in pyproject.toml; pip resolves them for the local package.
# hadolint ignore=DL3013
RUN pip install --no-cache-dir ".[gpu]" \
    && useradd --create-home --uid 1000 satx
USER 1000

ENTRYPOINT ["python", "-m"]
CMD ["tools.make_records", "--helpshort"]
