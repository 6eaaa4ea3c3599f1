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
        -addext "subjectAltName=DNS:$TLS_HOSTNAME,DNS:localhost,DNS:proxy,IP:127.0.0.1" \
        -keyout /tls/key.pem.tmp -out /tls/cert.pem.tmp 2>/dev/null
    chmod 600 /tls/key.pem.tmp
    mv /tls/key.pem.tmp /tls/key.pem
    mv /tls/cert.pem.tmp /tls/cert.pem
    echo "proxy: made a self-signed certificate for $TLS_HOSTNAME (valid 825 days):"
    openssl x509 -in /tls/cert.pem -noout -fingerprint -sha256
fi
# The redirect from plain HTTP names the HTTPS port users reach (omitted when it is 443).
HTTPS_PORT=${HTTPS_PORT:-443}
case $HTTPS_PORT in
    443) target='https://$host$request_uri' ;;
    *[!0-9]*|'') echo "proxy: HTTPS_PORT must be a port number, not '$HTTPS_PORT'" >&2; exit 1 ;;
    *) target="https://\$host:$HTTPS_PORT\$request_uri" ;;
esac
echo "return 308 $target;" > /etc/nginx/https-redirect.conf
exec "$@"
