#!/usr/bin/env bash
# The registry the registry tests run against: Debian's docker-registry (distribution 2.8) and htpasswd
# (apache2-utils), installed when missing. The tests start their own registries on 127.0.0.1 with configs
# of their own; this script only makes sure the programs are there (CI on a fresh machine).
#   scripts/registry.sh install   install when missing; prints the registry binary's path
set -euo pipefail
case "${1:-install}" in
  install)
    if ! [ -x /usr/bin/docker-registry ] || ! command -v htpasswd >/dev/null 2>&1; then
      if [ "$(id -u)" != 0 ]; then echo "registry.sh: docker-registry is missing and installing it needs root (apt-get install docker-registry apache2-utils)" >&2; exit 1; fi
      export DEBIAN_FRONTEND=noninteractive
      apt-get install -y --no-install-recommends docker-registry apache2-utils >/dev/null 2>&1 \
        || { apt-get update >/dev/null 2>&1 && apt-get install -y --no-install-recommends docker-registry apache2-utils >/dev/null; }
      # The package starts a system registry on :5000; the tests run their own.
      systemctl disable --now docker-registry >/dev/null 2>&1 || true
    fi
    echo /usr/bin/docker-registry
    ;;
  *) echo "usage: registry.sh install" >&2; exit 2 ;;
esac
