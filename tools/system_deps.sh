#!/usr/bin/env bash
# System programs that the README's two commands need, found where they are, installed only
# where this user may install (root, or passwordless sudo), and otherwise explained.
#
#   tools/system_deps.sh browser     print the path of Chromium or Google Chrome (required for
#                                    the site check); install Debian's chromium if none is found
#   tools/system_deps.sh tcmalloc    print the path of tcmalloc (optional: the notebooks only run
#                                    faster with it); install Debian's libtcmalloc-minimal4
#   tools/system_deps.sh bubblewrap  print the path of bwrap (the grader's sandbox); install
#                                    Debian's bubblewrap
#
# Exit status 0 with the path on stdout, or 1 with what to install on stderr.
set -u

BROWSERS="chromium chromium-browser google-chrome google-chrome-stable"

find_browser() {
  local name path
  for name in $BROWSERS; do
    path=$(command -v "$name" 2>/dev/null) && { echo "$path"; return 0; }
  done
  return 1
}

find_tcmalloc() {
  local lib
  for lib in /usr/lib/*/libtcmalloc_minimal.so.4 /usr/lib/libtcmalloc_minimal.so.4; do
    [ -e "$lib" ] && { echo "$lib"; return 0; }
  done
  return 1
}

find_bwrap() { command -v bwrap 2>/dev/null; }

# Install Debian packages as root, or with passwordless sudo; fail quietly otherwise.
apt_install() {
  local prefix=""
  command -v apt-get >/dev/null 2>&1 || return 1
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null || return 1
    prefix="sudo -n"
  fi
  echo "installing Debian packages: $*" >&2
  $prefix apt-get update -qq >/dev/null && $prefix apt-get install -y -qq "$@" >/dev/null
}

need() {  # need FINDER PACKAGE WHAT
  "$1" && return 0
  apt_install "$2" && "$1" && return 0
  echo "$3 not found, and this user cannot install it (not root, no passwordless sudo)." >&2
  return 1
}

case "${1:-}" in
  browser)
    need find_browser chromium "A browser for the site check ($BROWSERS)" \
      || { echo "Install one, e.g. 'sudo apt-get install chromium' or Google Chrome, and run again." >&2; exit 1; } ;;
  tcmalloc)
    need find_tcmalloc libtcmalloc-minimal4 "tcmalloc" \
      || { echo "Optional: the notebooks run with glibc's malloc, only slower ('sudo apt-get install libtcmalloc-minimal4')." >&2; exit 1; } ;;
  bubblewrap)
    need find_bwrap bubblewrap "bubblewrap (bwrap), the grader's sandbox," \
      || { echo "Install it ('sudo apt-get install bubblewrap'); without it the grader refuses untrusted work." >&2; exit 1; } ;;
  *)
    echo "usage: $0 browser|tcmalloc|bubblewrap" >&2; exit 2 ;;
esac
