#!/usr/bin/env sh
# Build deploy/mosquitto/passwd (hashed) from deploy/mosquitto/credentials.txt, one `user:password`
# per line: `shelfwatch-ingest:...` and one line per store gateway (`S001:...`). Neither file is
# committed (.gitignore); keep credentials.txt in your secret store.
set -eu
cd "$(dirname "$0")"
[ -f credentials.txt ] || { echo "credentials.txt missing (user:password per line)" >&2; exit 2; }
cp credentials.txt passwd
mosquitto_passwd -U passwd   # hashes the plaintext passwords in place
chmod 600 passwd
echo "wrote $(pwd)/passwd for $(wc -l < passwd) users"
