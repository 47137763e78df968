#!/bin/sh
# The SQL tests start Debian's PostgreSQL server; install it when it is missing.
set -e
for initdb in /usr/lib/postgresql/*/bin/initdb; do
    if [ -x "$initdb" ]; then
        exit 0
    fi
done
if [ "$(id -u)" -eq 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
else
    echo "The SQL tests need PostgreSQL: install the 'postgresql' package (apt-get install -y postgresql)," >&2
    echo "or set DATABASE_URL to a postgresql:// URL of an existing server." >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq postgresql >/dev/null
