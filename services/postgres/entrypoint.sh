#!/bin/sh
# Initialises the data directory on first start, the way the official image does, then
# replaces itself with the server. Writes only to PGDATA, /var/run/postgresql and /tmp.
# Shell built-ins and PostgreSQL's own programs only: the distroless base has dash and no
# other command (no mkdir, chmod, mktemp or rm).
set -eu

: "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD must be set}"
POSTGRES_USER=${POSTGRES_USER:-postgres}
POSTGRES_DB=${POSTGRES_DB:-$POSTGRES_USER}
PGDATA=${PGDATA:-/var/lib/postgresql/data/pgdata}

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    echo "initialising $PGDATA for user $POSTGRES_USER, database $POSTGRES_DB"
    # initdb creates PGDATA (mode 0700) or fixes the mode of an empty one. The password comes
    # on a pipe, so it is never written to a file.
    printf '%s\n' "$POSTGRES_PASSWORD" |
        initdb --pgdata="$PGDATA" --username="$POSTGRES_USER" --pwfile=/dev/stdin \
            --auth-local=trust --auth-host=scram-sha-256 --encoding=UTF8 --no-instructions
    # Clients come over the pod network; the NetworkPolicy decides which pods may.
    echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
    if [ "$POSTGRES_DB" != postgres ]; then
        echo "CREATE DATABASE \"$POSTGRES_DB\" OWNER \"$POSTGRES_USER\"" |
            postgres --single -D "$PGDATA" postgres >/dev/null
    fi
fi

exec postgres -D "$PGDATA" -c listen_addresses='*' "$@"
