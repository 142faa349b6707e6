#!/usr/bin/env bash
# Makes a demo CA and a server certificate signed by it (idempotent: keeps existing files).
#   scripts/make-certs.sh DIR [ec|rsa] [NAME...]
# Writes DIR/ca.crt, DIR/ca.key, DIR/server.crt, DIR/server.key. NAMEs become subjectAltName DNS
# entries (default: localhost app.example *.app.example), plus IP:127.0.0.1 and IP:::1.
# For demos and tests only: the CA key sits next to the certificates.
set -euo pipefail
dir=${1:?usage: make-certs.sh DIR [ec|rsa] [NAME...]}
kind=${2:-ec}
shift $(( $# >= 2 ? 2 : 1 ))
names=("$@")
((${#names[@]})) || names=(localhost app.example '*.app.example')

mkdir -p "$dir"
chmod 700 "$dir"
[[ -s $dir/server.crt && -s $dir/server.key && -s $dir/ca.crt ]] && exit 0

newkey() {
  if [[ $kind == rsa ]]; then openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$1" 2>/dev/null
  else openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; fi
}
san="IP:127.0.0.1,IP:::1"
for n in "${names[@]}"; do san="DNS:$n,$san"; done

newkey "$dir/ca.key"
openssl req -x509 -new -key "$dir/ca.key" -sha256 -days 365 -subj "/CN=phigate demo CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -out "$dir/ca.crt" 2>/dev/null
newkey "$dir/server.key"
openssl req -new -key "$dir/server.key" -subj "/CN=${names[0]}" -out "$dir/server.csr" 2>/dev/null
printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n' "$san" >"$dir/server.ext"
openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial -days 90 \
  -sha256 -extfile "$dir/server.ext" -out "$dir/server.crt" 2>/dev/null
rm -f "$dir/server.csr" "$dir/server.ext" "$dir/ca.srl"
chmod 600 "$dir"/*.key
echo "made demo CA and server certificate in $dir (${names[*]})"
