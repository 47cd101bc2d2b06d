#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# spdm-keys.sh [DIR]: the SPDM identities of the emulated endpoints, made
# with openssl once per cache (default $BUILD/spdm; 'make clean' removes
# it) and never committed:
#
#   root.der                  test root CA (RSA-3072, self-signed, SHA-384)
#   untrusted-root.der        another root, which the guest does not trust
#   fw/devsec/key<K>.der      device key K = 0..7 (RSA-3072, DER PKCS#1
#                             RSAPrivateKey, as the kernel's rsa takes it)
#   fw/devsec/ep<I>.chain     DER root || DER leaf of endpoint I = 0..255
#                             (key I % 8, CN "devsec endpoint I")
#   fw/devsec/ep<I>-untrusted.chain  the same leaf key, certified by the
#                             untrusted root
#
# mkinitramfs.sh puts fw/ into the guest's /lib/firmware, where devsec_bus
# loads it, and the two roots into /devsec/spdm/.  Eight keys, not 256:
# RSA key generation is the slow part; every endpoint still has a
# certificate of its own.  Built in a temporary directory and renamed, so an
# interrupted run leaves nothing half-made.

. "$(dirname "$0")/common.sh"

dir=${1:-$BUILD/spdm}
ENDPOINTS=256
KEYS=8
[ -f "$dir/done" ] && exit 0
command -v openssl >/dev/null || die "openssl is not installed (run make setup)"

msg "generating SPDM test keys and certificates in $dir"
tmp=$dir.tmp
rm -rf "$tmp"
mkdir -p "$tmp/fw/devsec" "$tmp/work"
cd "$tmp/work" || die "no $tmp/work"

cat >ext.cnf <<'EOF'
[req]
distinguished_name = dn
prompt = no
[dn]
CN = devsec test root CA
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[leaf]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF

ossl() { openssl "$@" 2>>openssl.log || die "openssl $1 failed (log: $tmp/work/openssl.log)"; }

# root NAME CN: a self-signed CA, NAME.key and NAME.pem.
root() {
	ossl req -x509 -new -newkey rsa:3072 -nodes -keyout "$1.key" -sha384 -days 3650 \
		-config ext.cnf -extensions ca -subj "/CN=$2" -out "$1.pem"
	ossl x509 -in "$1.pem" -outform DER -out "$tmp/$1.der"
}
root root "devsec test root CA"
root untrusted-root "devsec untrusted root CA"

for ((k = 0; k < KEYS; k++)); do
	ossl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:3072 -out "key$k.pem"
	ossl rsa -in "key$k.pem" -traditional -outform DER -out "$tmp/fw/devsec/key$k.der"
	ossl req -new -key "key$k.pem" -subj "/CN=devsec key $k" -out "key$k.csr"
done

# leaf I CA SERIAL OUT: the certificate of endpoint I by CA, as DER.
leaf() {
	openssl x509 -req -in "key$(($1 % KEYS)).csr" -subj "/CN=devsec endpoint $1" \
		-CA "$2.pem" -CAkey "$2.key" -set_serial "$3" -sha384 -days 3650 \
		-extfile ext.cnf -extensions leaf -outform DER -out "$4" 2>>"openssl.$1.log"
}
export -f leaf
export KEYS
# Two at a time: one certificate is ~40 ms of openssl start-up and signing.
seq 0 $((ENDPOINTS - 1)) | xargs -P "$(nproc)" -I{} bash -c '
	leaf {} root $((1000 + {})) ep{}.der &&
	leaf {} untrusted-root $((5000 + {})) ep{}-untrusted.der' ||
	die "signing the endpoint certificates failed (logs: $tmp/work/openssl.*.log)"
for ((i = 0; i < ENDPOINTS; i++)); do
	cat "$tmp/root.der" "ep$i.der" >"$tmp/fw/devsec/ep$i.chain"
	cat "$tmp/untrusted-root.der" "ep$i-untrusted.der" >"$tmp/fw/devsec/ep$i-untrusted.chain"
done

# Check once what the guest relies on: a leaf verifies against its root and
# not against the other one; the device key is a PKCS#1 RSAPrivateKey (a
# SEQUENCE of nine INTEGERs).
ossl x509 -inform DER -in ep0.der -out ep0.pem
openssl verify -CAfile root.pem ep0.pem >/dev/null 2>&1 ||
	die "endpoint 0's certificate does not verify against the test root"
openssl verify -CAfile untrusted-root.pem ep0.pem >/dev/null 2>&1 &&
	die "endpoint 0's certificate verifies against the untrusted root"
n=$(openssl asn1parse -inform DER -in "$tmp/fw/devsec/key0.der" | grep -c 'prim: INTEGER')
[ "$n" = 9 ] || die "key0.der is not a PKCS#1 RSAPrivateKey ($n integers)"

cd "$tmp" && rm -rf work
touch done
rm -rf "$dir"
mv "$tmp" "$dir"
