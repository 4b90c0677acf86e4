#!/usr/bin/env bash
# The services the black-box tests talk to, installed and started when missing and used
# as they are when already running. Today: PostgreSQL at 127.0.0.1:5432 with a `test`
# database that `postgres` reaches without a password (the scale-out tests' database),
# and OpenSSH's sshd installed (not started: the SFTP tests run their own on a loopback
# port with a generated config and keys).
# Idempotent; run as root (or with sudo) on Debian.
set -euo pipefail

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
PG_URL="postgres://postgres@127.0.0.1:5432/test"

pg_ready() {
  psql "$PG_URL" -tAc 'SELECT 1' >/dev/null 2>&1
}

ensure_postgres() {
  if ! command -v psql >/dev/null 2>&1; then
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends postgresql-client
  fi
  if pg_ready; then
    return
  fi
  if ! command -v pg_ctlcluster >/dev/null 2>&1; then
    echo "test-services: installing PostgreSQL"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends postgresql postgresql-client
  fi
  local version
  version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -1)
  if [ -z "$version" ]; then
    version=$(ls /usr/lib/postgresql | sort -V | tail -1)
    $SUDO pg_createcluster "$version" main
  fi
  local conf="/etc/postgresql/$version/main"
  # The test rig connects as `postgres` over loopback without a password.
  if ! $SUDO grep -Eq '^host\s+all\s+all\s+127\.0\.0\.1/32\s+trust' "$conf/pg_hba.conf"; then
    echo "test-services: trusting loopback connections in $conf/pg_hba.conf (test machines only)"
    $SUDO sed -i '1i host all all 127.0.0.1/32 trust\nlocal all all trust' "$conf/pg_hba.conf"
  fi
  if ! $SUDO grep -Eq "^\s*listen_addresses\s*=\s*'(localhost|127\.0\.0\.1|\*)" "$conf/postgresql.conf"; then
    echo "listen_addresses = 'localhost'" | $SUDO tee -a "$conf/postgresql.conf" >/dev/null
  fi
  if ! $SUDO grep -Eq '^\s*port\s*=\s*5432' "$conf/postgresql.conf"; then
    echo "port = 5432" | $SUDO tee -a "$conf/postgresql.conf" >/dev/null
  fi
  # Without systemd (containers, CI), pg_ctlcluster must not hand over to systemctl.
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$version" main restart
  for _ in $(seq 1 60); do
    if pg_isready -h 127.0.0.1 -p 5432 -q; then break; fi
    sleep 0.5
  done
  if ! psql "postgres://postgres@127.0.0.1:5432/postgres" -tAc "SELECT 1 FROM pg_database WHERE datname = 'test'" | grep -q 1; then
    psql "postgres://postgres@127.0.0.1:5432/postgres" -qc "CREATE DATABASE test"
  fi
  pg_ready || { echo "test-services: PostgreSQL is not reachable at $PG_URL" >&2; exit 1; }
  echo "test-services: PostgreSQL ready at $PG_URL"
}

ensure_sshd() {
  if [ ! -x /usr/sbin/sshd ]; then
    echo "test-services: installing openssh-server (sshd for the SFTP tests)"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends openssh-server openssh-client
  fi
}

ensure_postgres
ensure_sshd
