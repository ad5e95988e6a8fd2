#!/bin/sh
# Regenerates the test certificates (valid 100 years; for tests only, never deploy them):
# a CA, two server certificates for 127.0.0.1/localhost (to test a renewal), a client
# certificate signed by the CA, and a client certificate from another, untrusted CA.
set -eu
cd "$(dirname "$0")"
days=36500
ext_server="subjectAltName=IP:127.0.0.1,DNS:localhost"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days $days \
    -subj "/CN=collectord test CA" -keyout ca.key -out ca.crt 2>/dev/null
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days $days \
    -subj "/CN=untrusted CA" -keyout other-ca.key -out other-ca.crt 2>/dev/null
for name in server server2 client stranger; do
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -subj "/CN=$name" -keyout $name.key -out $name.csr 2>/dev/null
done
sign() {  # name ca ext
    printf '%s\n' "$3" > ext.cnf
    openssl x509 -req -in $1.csr -CA $2.crt -CAkey $2.key -CAcreateserial -days $days \
        -extfile ext.cnf -out $1.crt 2>/dev/null
}
sign server ca "$ext_server"
sign server2 ca "$ext_server"
sign client ca "extendedKeyUsage=clientAuth"
sign stranger other-ca "extendedKeyUsage=clientAuth"
rm -f ./*.csr ./*.srl ext.cnf ca.key other-ca.key
