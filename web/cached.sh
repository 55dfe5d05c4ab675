#!/usr/bin/env bash
# The site's npm packages and its build, kept in this machine's cache by what they are
# made from, so that a new checkout of the same web/ does not make them again
# (`make site`; a fresh clone's set-up spent ~8 s in `npm ci` and ~5 s in `vite build`).
#
#   web/cached.sh packages   web/node_modules as `npm ci` makes it from the lockfile
#   web/cached.sh site       the built site (services/gateway/static/site) as `npm run build`
#
# The key of the packages is the hash of package.json and package-lock.json with Node's and
# npm's versions; the key of the site adds every file of web/src, web/public, index.html and
# vite.config.js (names and contents). Missing from the cache: made as always, then copied
# there (a whole entry or none: written beside it, then renamed). Found: copied out
# (node_modules as hard links where the cache is on the same file system). KAOWU_CACHE
# (default $XDG_CACHE_HOME/kaowu or ~/.cache/kaowu, as in the Makefile) is the cache.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

what=${1:-}
SITE_OUT=../services/gateway/static/site
KEEP=3 # entries kept of each kind, newest first
CACHE=${KAOWU_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kaowu}

versions() { printf 'node %s npm %s\n' "$(node --version)" "$(npm --version)"; }

packages_key() {
  { versions; cat package.json package-lock.json; } | sha256sum | cut -c1-32
}

site_key() {
  {
    packages_key
    # every file the build reads from web/, by name and content, in a fixed order
    local p paths=()
    for p in src public index.html vite.config.js; do [ -e "$p" ] && paths+=("$p"); done
    find "${paths[@]}" -type f | LC_ALL=C sort |
      while IFS= read -r f; do printf '%s\0' "$f"; sha256sum <"$f"; done
  } | sha256sum | cut -c1-32
}

make_packages() { npm ci --no-audit --no-fund; }
make_site() { npm run build; }

# copy $1 to $2 (a new tree); with "links", hard links where the file system allows. The
# packages are only read once installed (Vite and Vitest write new files under .vite/); the
# site gets real copies, as small as they are
copy_tree() {
  rm -rf "$2"
  mkdir -p "$(dirname "$2")"
  if [ "${3:-}" = links ] && cp -al "$1" "$2" 2>/dev/null; then return; fi
  rm -rf "$2"
  cp -a "$1" "$2"
}

# keep the KEEP newest entries of a kind (and no half-made one older than an hour)
prune() {
  local kind=$1
  find "$CACHE/$kind" -mindepth 1 -maxdepth 1 -name '*.tmp.*' -mmin +60 -exec rm -rf {} +
  find "$CACHE/$kind" -mindepth 1 -maxdepth 1 -type d ! -name '*.tmp.*' -printf '%T@ %p\n' |
    LC_ALL=C sort -rn | tail -n +$((KEEP + 1)) | cut -d' ' -f2- | xargs -r rm -rf
}

# cached KIND KEY DIR MAKE [links]: DIR from the cache entry KIND/KEY, or made by MAKE and kept
cached() {
  local kind=$1 key=$2 dir=$3 make=$4 how=${5:-}
  local entry=$CACHE/$kind/$key
  if [ -f "$entry/.complete" ]; then
    echo "web/cached.sh: $kind from the cache ($key)"
    copy_tree "$entry/tree" "$dir" "$how"
    touch "$entry"
    return
  fi
  "$make"
  # a cache that cannot be written (read-only, full) costs nothing but the next make
  local tmp
  mkdir -p "$CACHE/$kind" 2>/dev/null && tmp=$(mktemp -d "$CACHE/$kind/$key.tmp.XXXXXX" 2>/dev/null) ||
    return 0
  [ -d "$entry" ] && [ ! -f "$entry/.complete" ] && rm -rf "$entry" # left half-made by hand
  if cp -a "$dir" "$tmp/tree" 2>/dev/null && touch "$tmp/.complete" &&
    mv -T "$tmp" "$entry" 2>/dev/null; then
    prune "$kind"
  else
    rm -rf "$tmp" # another make kept the same entry first, or the copy failed
  fi
}

case "$what" in
  packages) cached packages "$(packages_key)" node_modules make_packages links ;;
  site) cached site "$(site_key)" "$SITE_OUT" make_site ;;
  *)
    echo "usage: web/cached.sh packages|site" >&2
    exit 2
    ;;
esac
