#!/usr/bin/env bash
# Test certificates for the private services: a CA, a server certificate for
# the host name "localhost" only, and a client certificate, made with the
# openssl CLI. DEV/TEST ONLY: the keys are unencrypted.
#
# Usage: scripts/tls-certs.sh DIR
#   Creates, when missing, in DIR:
#     ca.pem, ca.key          the CA (self-signed, 10 years)
#     server.pem, server.key  CN=localhost, subjectAltName DNS:localhost and
#                             nothing else: a client that connects to
#                             127.0.0.1 must fail host-name verification
#     client.pem, client.key  CN=paytx, for clients that present one
#   Existing files are kept, so restarts do not change the CA under running
#   clients. Remove DIR to start over.
set -euo pipefail

dir=${1:?usage: tls-certs.sh DIR}
command -v openssl >/dev/null 2>&1 || {
    echo "tls-certs.sh: openssl not found (scripts/install-deps.sh installs it)" >&2
    exit 1
}
mkdir -p "$dir"
cd "$dir"
[ -s ca.pem ] && [ -s server.pem ] && [ -s client.pem ] && exit 0

umask 077
days=3650
if [ ! -s ca.pem ]; then
    openssl req -x509 -new -newkey rsa:2048 -nodes -sha256 -days "$days" \
        -subj "/CN=paytx test CA" -keyout ca.key -out ca.pem \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    rm -f server.pem client.pem   # signed by an older CA
fi

# $1 name, $2 subject, $3 extensions (one per line)
issue() {
    local name=$1 subj=$2 ext=$3
    openssl req -new -newkey rsa:2048 -nodes -sha256 -subj "$subj" \
        -keyout "$name.key" -out "$name.csr" 2>/dev/null
    printf '%s\n' "$ext" >"$name.ext"
    openssl x509 -req -in "$name.csr" -CA ca.pem -CAkey ca.key -CAcreateserial \
        -days "$days" -sha256 -extfile "$name.ext" -out "$name.pem" 2>/dev/null
    rm -f "$name.csr" "$name.ext"
}

[ -s server.pem ] || issue server "/CN=localhost" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost"
[ -s client.pem ] || issue client "/CN=paytx" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth"
rm -f ca.srl
# Certificates are public; the keys stay private to the owner.
chmod 644 ca.pem server.pem client.pem
chmod 600 ca.key server.key client.key
