#!/bin/sh
# Make a self-signed certificate for TLS_HOSTNAME on first start, unless /tls already holds
# cert.pem (the full chain) and key.pem, e.g. a real certificate mounted there.
set -eu
TLS_HOSTNAME=${TLS_HOSTNAME:-localhost}
if [ ! -s /tls/cert.pem ] || [ ! -s /tls/key.pem ]; then
    if ! [ -w /tls ]; then
        echo "proxy: /tls has no cert.pem and key.pem, and is read-only" >&2
        exit 1
    fi
    openssl req -x509 -newkey rsa:3072 -sha256 -nodes -days 825 \
        -subj "/CN=$TLS_HOSTNAME" \
        -addext "subjectAltName=DNS:$TLS_HOSTNAME,DNS:localhost,IP:127.0.0.1" \
        -keyout /tls/key.pem.tmp -out /tls/cert.pem.tmp 2>/dev/null
    chmod 600 /tls/key.pem.tmp
    mv /tls/key.pem.tmp /tls/key.pem
    mv /tls/cert.pem.tmp /tls/cert.pem
    echo "proxy: made a self-signed certificate for $TLS_HOSTNAME (valid 825 days):"
    openssl x509 -in /tls/cert.pem -noout -fingerprint -sha256
fi
exec "$@"
