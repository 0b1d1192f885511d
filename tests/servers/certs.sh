#!/usr/bin/env bash
# certs.sh DIR — throwaway PKI for the SMTP test servers.
#   DIR/ca.pem, ca.key           a test CA
#   DIR/server.pem, server.key   CN=localhost, SAN DNS:localhost, IP:127.0.0.1, IP:::1 (signed by ca)
#   DIR/other-ca.pem, .key       a second CA that signed nothing
#   DIR/expired.pem, .key        CN=localhost, same SAN, signed by ca, valid 2020-01-01..2020-01-02 only
#   DIR/wronghost.pem, .key      CN=wrong.example, SAN DNS:wrong.example only (signed by ca)
#   DIR/client.pem, .key         CN=libsmtpc test client, clientAuth (signed by ca)
#   DIR/client-other.pem, .key   the same, signed by other-ca (a server trusting ca refuses it)
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 DIR" >&2; exit 2; }
DIR="$1"
mkdir -p "$DIR"
cd "$DIR"
export OPENSSL_CONF=/dev/null   # no system config surprises

# EC P-256 keys: fast to generate, accepted by every TLS stack in use here.
newkey() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

cat > ext.cnf <<'CNF'
[ca_ext]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash

[server_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = DNS:localhost, IP:127.0.0.1, IP:::1

[wrong_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = DNS:wrong.example

[client_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid

# --- minimal "openssl ca" setup, used only for the expired certificate ---
[ca]
default_ca = test_ca
[test_ca]
dir = ./ca-db
database = ./ca-db/index.txt
new_certs_dir = ./ca-db
serial = ./ca-db/serial
certificate = ./ca.pem
private_key = ./ca.key
default_md = sha256
policy = any_policy
copy_extensions = none
unique_subject = no
[any_policy]
commonName = supplied
CNF

mkca() { # name CN
    newkey "$1.key"
    openssl req -x509 -new -key "$1.key" -sha256 -days 3650 -subj "/CN=$2" \
        -config ext.cnf -extensions ca_ext -out "$1.pem"
}
mkleaf() { # name CN extsection
    newkey "$1.key"
    openssl req -new -key "$1.key" -subj "/CN=$2" -config ext.cnf -out "$1.csr"
    openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -set_serial "0x$(openssl rand -hex 8)" \
        -days 3650 -sha256 -extfile ext.cnf -extensions "$3" -out "$1.pem" 2>/dev/null
}

mkca ca "libsmtpc test CA"
mkca other-ca "libsmtpc other CA"
mkleaf server localhost server_ext
mkleaf wronghost wrong.example wrong_ext

# Client certificates (mutual TLS): one from ca, one from other-ca.
mkclient() { # name signing-ca
    newkey "$1.key"
    openssl req -new -key "$1.key" -subj "/CN=libsmtpc test client" -config ext.cnf -out "$1.csr"
    openssl x509 -req -in "$1.csr" -CA "$2.pem" -CAkey "$2.key" -set_serial "0x$(openssl rand -hex 8)" \
        -days 3650 -sha256 -extfile ext.cnf -extensions client_ext -out "$1.pem" 2>/dev/null
}
mkclient client ca
mkclient client-other other-ca

# Expired: OpenSSL 3.0's "x509 -req" cannot set a start date, "ca" can.
newkey expired.key
openssl req -new -key expired.key -subj "/CN=localhost" -config ext.cnf -out expired.csr
mkdir -p ca-db
: > ca-db/index.txt
openssl rand -hex 8 > ca-db/serial
openssl ca -batch -notext -config ext.cnf -extfile ext.cnf -extensions server_ext \
    -startdate 20200101000000Z -enddate 20200102000000Z \
    -in expired.csr -out expired.pem 2>/dev/null

rm -rf ca-db ./*.csr ext.cnf
# Readable by the unprivileged server processes (Postfix reads them as root at
# startup, but keep it simple for everybody): these are throwaway test keys.
chmod 644 ./*.pem ./*.key
