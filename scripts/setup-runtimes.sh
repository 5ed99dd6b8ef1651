#!/usr/bin/env bash
# Installs the Lambda runtimes the local stack runs teams' functions on, idempotently, into
# the cache folder ($DYNAMOWAVE_CACHE, default ~/.cache/dynamowave):
#   - lambda-python/: a virtualenv with AWS's Python runtime interface client (awslambdaric,
#     pinned) and boto3 (pinned), importable as on Lambda's python3.x runtimes;
#   - lambda-node/: AWS's Node.js runtime interface client (aws-lambda-ric, pinned; it builds
#     its native part with cmake and a C++ compiler, installed from Debian) and the AWS SDK
#     for JavaScript v3 clients a chat uses (pinned), resolvable as on Lambda's nodejs runtimes.
# Called by scripts/setup.sh; safe to run again (each step checks first).
set -euo pipefail

AWSLAMBDARIC_VERSION=4.2.2
LAMBDA_BOTO3_VERSION=1.44.8
# 4.x needs Node 22; this machine's Node is 20 (every nodejs runtime runs on it).
AWS_LAMBDA_RIC_VERSION=3.3.0
AWS_SDK_JS_VERSION=3.1169.0
AWS_SDK_JS="@aws-sdk/client-apigatewaymanagementapi @aws-sdk/client-dynamodb @aws-sdk/lib-dynamodb"

say_as=setup-runtimes
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

# Python: awslambdaric and boto3 in their own virtualenv (Lambda's runtime has only these
# beside the standard library).
pyenv="$cache/lambda-python"
want_py="awslambdaric==$AWSLAMBDARIC_VERSION boto3==$LAMBDA_BOTO3_VERSION"
if ! { "$pyenv/bin/pip" freeze 2>/dev/null | grep -qx "awslambdaric==$AWSLAMBDARIC_VERSION" \
       && "$pyenv/bin/pip" freeze 2>/dev/null | grep -qx "boto3==$LAMBDA_BOTO3_VERSION"; }; then
  say "installing $want_py into $pyenv"
  python3 -m venv "$pyenv" 2>/dev/null || { apt_install python3-venv; python3 -m venv "$pyenv"; }
  # shellcheck disable=SC2086
  "$pyenv/bin/pip" install --quiet --disable-pip-version-check $want_py >&2
fi
say "python runtime ok: $("$pyenv/bin/python" --version) with $want_py"

# The provided.al2023 test chat is a shell bootstrap that speaks the Runtime API with curl.
for tool in jq curl; do command -v "$tool" >/dev/null || apt_install "$tool"; done

# Node: aws-lambda-ric (native addon built here) and the SDK v3 clients.
nodedir="$cache/lambda-node"
have_node=""
ric_pkg="$nodedir/node_modules/aws-lambda-ric/package.json"
sdk_pkg="$nodedir/node_modules/@aws-sdk/client-dynamodb/package.json"
if [ -f "$ric_pkg" ] && grep -q "\"version\": \"$AWS_LAMBDA_RIC_VERSION\"" "$ric_pkg" \
   && [ -f "$sdk_pkg" ] && grep -q "\"version\": \"$AWS_SDK_JS_VERSION\"" "$sdk_pkg"; then
  have_node=1
fi
if [ -z "$have_node" ]; then
  command -v npm >/dev/null || apt_install nodejs npm
  for tool in cmake make g++ autoconf automake libtoolize; do
    command -v "$tool" >/dev/null || { say "installing the native build tools"; apt_install cmake make g++ autoconf automake libtool; break; }
  done
  say "installing aws-lambda-ric@$AWS_LAMBDA_RIC_VERSION and the AWS SDK v3 ($AWS_SDK_JS_VERSION) into $nodedir (builds a native addon, ~2 min)"
  mkdir -p "$nodedir"
  [ -f "$nodedir/package.json" ] || echo '{"private":true}' > "$nodedir/package.json"
  pkgs="aws-lambda-ric@$AWS_LAMBDA_RIC_VERSION"
  for p in $AWS_SDK_JS; do pkgs="$pkgs $p@$AWS_SDK_JS_VERSION"; done
  # shellcheck disable=SC2086
  npm install --prefix "$nodedir" --no-audit --no-fund --loglevel=error $pkgs >&2
fi
say "node runtime ok: node $(node --version), aws-lambda-ric $AWS_LAMBDA_RIC_VERSION, AWS SDK $AWS_SDK_JS_VERSION"
