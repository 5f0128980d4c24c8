#!/usr/bin/env sh
# Installs the pinned node-oidc-provider (package-lock.json) into
# deploy/oidc-provider/node_modules with `npm ci`; a second run with the same
# lock file does nothing. npm's own cache (~/.npm) makes a reinstall quick.
# Needs node >= 20.19 and npm (Debian: apt-get install nodejs npm).
set -eu
cd "$(dirname "$0")"
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q nodejs npm
  else
    echo "install.sh: node and npm are required (apt-get install nodejs npm)" >&2
    exit 1
  fi
fi
stamp=node_modules/.embedtoken-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -d node_modules/oidc-provider ]; then
  exit 0
fi
npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
echo "$want" > "$stamp"
