#!/usr/bin/env bash
# Usage: scripts/node-line.sh MAJOR
# Installs the newest Node.js MAJOR.x from the registry's `node` package (binaries for this platform) into a cache
# directory, once, and prints the directory holding its `node`: put it first in PATH to run anything on that line.
set -euo pipefail
major=${1:?usage: scripts/node-line.sh MAJOR}
cache=${WSVIA_NODE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/wsvia/node}
dir="$cache/$major"
bin="$dir/node_modules/.bin"
if ! "$bin/node" --version 2>/dev/null | grep -q "^v$major\."; then
  mkdir -p "$dir"
  npm install --prefix "$dir" --no-save --no-audit --no-fund --loglevel=error "node@$major" >&2
fi
version=$("$bin/node" --version)
[[ $version == v$major.* ]] || { echo "node-line: got $version, not $major.x" >&2; exit 1; }
echo "$bin"
