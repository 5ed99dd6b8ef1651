# shellcheck shell=bash
# Shared by scripts/setup.sh and scripts/setup-runtimes.sh (sourced, not run): the cache
# folder, a prefixed message, root and apt helpers. The caller sets `say_as` first.
cache="${DYNAMOWAVE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/dynamowave}"
mkdir -p "$cache"
say() { printf '%s: %s\n' "${say_as:-setup}" "$*" >&2; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else say "need root to run: $*"; exit 1; fi
}

apt_updated=""
apt_install() {
  if [ -z "$apt_updated" ]; then as_root apt-get update -qq; apt_updated=1; fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}
