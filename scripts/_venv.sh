# Sourced by scripts/test and scripts/serve: make sure .venv exists and holds the project.
#
# Creates .venv (python3 -m venv, or $PYTHON) if missing and installs the project with its
# dev extra (`pip install -e '.[dev]'`: every other extra, server and postgres for the
# TokenService included, plus the tools); the install is skipped while
# .venv/.bearer-grpc-installed is newer than pyproject.toml.
venv=.venv
stamp="$venv/.bearer-grpc-installed"

if [ ! -x "$venv/bin/python" ]; then
    echo "creating $venv" >&2
    "${PYTHON:-python3}" -m venv "$venv"
fi

if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    echo "installing bearer-grpc[dev] into $venv" >&2
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e '.[dev]'
    touch "$stamp"
fi
