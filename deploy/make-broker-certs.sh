#!/bin/sh
# Makes a certificate authority and the broker's TLS certificate with openssl:
#   deploy/make-broker-certs.sh DIR HOSTNAME [DAYS]
# DIR receives ca.crt (install it on every bus: broker.ca_file), ca.key (keep it offline),
# server.crt and server.key (for Mosquitto's certfile and keyfile). An existing CA in DIR
# is reused, so a renewed server certificate needs no change on the buses.
set -eu
dir=${1:?usage: make-broker-certs.sh DIR HOSTNAME [DAYS]}
host=${2:?usage: make-broker-certs.sh DIR HOSTNAME [DAYS]}
days=${3:-825}
mkdir -p "$dir"
umask 077
if [ ! -f "$dir/ca.key" ]; then
    openssl req -x509 -newkey rsa:3072 -sha256 -nodes -days 3650 \
        -subj "/CN=medicobus broker CA" \
        -keyout "$dir/ca.key" -out "$dir/ca.crt" 2>/dev/null
fi
case "$host" in
    *[!0-9.]*) san="DNS:$host" ;;
    *) san="IP:$host" ;;
esac
openssl req -newkey rsa:3072 -sha256 -nodes -subj "/CN=$host" \
    -keyout "$dir/server.key" -out "$dir/server.csr" 2>/dev/null
printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\n' "$san" > "$dir/server.ext"
openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" \
    -CAcreateserial -days "$days" -sha256 -extfile "$dir/server.ext" \
    -out "$dir/server.crt" 2>/dev/null
rm -f "$dir/server.csr" "$dir/server.ext"
chmod 644 "$dir/ca.crt" "$dir/server.crt"
echo "CA: $dir/ca.crt; broker certificate for $san: $dir/server.crt (key: $dir/server.key)"
