#!/usr/bin/env bash
# The one install of Shelfwatch's Python environment, used by the Airflow image
# (deploy/airflow/Dockerfile), the Shelfwatch image (Dockerfile) and `make install` / `make stack`:
# both lock files together, then the project, then proof that the executor really imports.
#   deploy/install.sh PYTHON deps      the locked packages only (an image's cached layer)
#   deploy/install.sh PYTHON project   the project itself (editable, no dependencies) and the checks
#   deploy/install.sh PYTHON           both
#   deploy/install.sh PYTHON dev       the test and lint tools (requirements-dev.lock): `make install`
#                                      only, never an image, so production carries no test tools
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${1:-python}
STEP=${2:-all}
PIP=("$PYTHON" -m pip install --quiet --no-cache-dir --disable-pip-version-check)

if [[ $STEP == deps || $STEP == all ]]; then
  "${PIP[@]}" -r requirements.lock -r deploy/airflow/requirements-airflow.lock
fi
if [[ $STEP == dev ]]; then
  "${PIP[@]}" -r requirements-dev.lock -c requirements.lock
  "$PYTHON" -m pip check --disable-pip-version-check
fi
if [[ $STEP == project || $STEP == all ]]; then
  "${PIP[@]}" --no-deps -e .
  "$PYTHON" -m pip check --disable-pip-version-check
  # pip check passes sets whose modules don't import (celery 5.7 with the 3.26 provider did): import
  # what the scheduler and the workers load, in a throw-away AIRFLOW_HOME.
  probe_home=$(mktemp -d)
  AIRFLOW_HOME=$probe_home AIRFLOW__CORE__EXECUTOR=CeleryExecutor AIRFLOW__CORE__LOAD_EXAMPLES=false \
    "$PYTHON" -c "import airflow.providers.celery.executors.celery_executor, airflow.providers.postgres.hooks.postgres, shelfwatch.cli.app" \
    2>"$probe_home/import.log" || { cat "$probe_home/import.log" >&2; rm -rf "$probe_home"; echo "install: the Celery executor does not import with the locked packages" >&2; exit 1; }
  rm -rf "$probe_home"
fi
