#!/usr/bin/env bash
# PostgreSQL for the tests: installed from Debian's packages when missing, started, and a `test`
# database that user postgres reaches on 127.0.0.1:5432 without a password (a throw-away CI server).
set -euo pipefail

if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
  echo "installing PostgreSQL from Debian's packages…"
  [ -f /var/lib/apt/periodic/aiguillage-updated ] || { apt-get update -q; mkdir -p /var/lib/apt/periodic; touch /var/lib/apt/periodic/aiguillage-updated; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >/dev/null
fi
version=$(ls /etc/postgresql | sort -V | tail -n1)
conf=/etc/postgresql/$version/main
if ! grep -q '^# aiguillage-ci' "$conf/pg_hba.conf"; then
  { echo '# aiguillage-ci: the tests connect as postgres over loopback, no password'
    echo 'host all all 127.0.0.1/32 trust'
    echo 'host all all ::1/128 trust'
    cat "$conf/pg_hba.conf"; } > "$conf/pg_hba.conf.new"
  mv "$conf/pg_hba.conf.new" "$conf/pg_hba.conf"
  chown postgres:postgres "$conf/pg_hba.conf"
fi
if pg_isready -h 127.0.0.1 -p 5432 -q; then
  pg_ctlcluster --skip-systemctl-redirect "$version" main reload
else
  pg_ctlcluster --skip-systemctl-redirect "$version" main start
fi
for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done
pg_isready -h 127.0.0.1 -p 5432
psql -h 127.0.0.1 -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'test'" | grep -q 1 \
  || psql -h 127.0.0.1 -U postgres -c 'CREATE DATABASE test' >/dev/null
echo "PostgreSQL $version ready on 127.0.0.1:5432, database test"
