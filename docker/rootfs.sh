#!/usr/bin/env bash
# rootfs.sh BINARY DEST: the whole file system of the phigate image, built in DEST (which must not
# exist): the binary, exactly the shared libraries `ldd` names and the dynamic loader, the CA
# bundle (backends verified against the system store), and passwd/group naming uid 10001. No shell,
# no package manager, no coreutils: nothing an intruder could run but phigate itself.
# Used by docker/Dockerfile (build stage) and docker/build-image.sh (buildah).
set -euo pipefail
if [[ $# -ne 2 ]]; then echo "usage: rootfs.sh BINARY DEST" >&2; exit 2; fi
bin=$1 dest=$2
[[ -x $bin ]] || { echo "rootfs.sh: not an executable: $bin" >&2; exit 1; }
[[ ! -e $dest ]] || { echo "rootfs.sh: already exists: $dest" >&2; exit 1; }
libdir=usr/lib/x86_64-linux-gnu
mkdir -p "$dest/usr/local/bin" "$dest/$libdir" "$dest/etc/ssl/certs" "$dest/usr/lib/ssl"
install -m 0755 "$bin" "$dest/usr/local/bin/phigate"

# "libx.so.1 => /path/libx.so.1 (0x...)" and "/lib64/ld-linux-x86-64.so.2 (0x...)"; the vDSO has
# no file. Libraries go to the multiarch folder glibc searches without an ld.so.cache (the binary's
# build-tree RPATH does not exist in the image and is skipped); the loader keeps its ELF path.
found=0
while read -r first arrow path _; do
  if [[ $arrow == "=>" ]]; then
    [[ $path == /* ]] || { echo "rootfs.sh: $first: not found by ldd" >&2; exit 1; }
    cp -L "$path" "$dest/$libdir/$first"
    found=$((found + 1))
  elif [[ $first == /* ]]; then
    mkdir -p "$dest/$(dirname "$first")"
    cp -L "$first" "$dest/$first"
  fi
done < <(ldd "$bin")
[[ $found -gt 0 ]] || { echo "rootfs.sh: ldd found no libraries (static binary?)" >&2; exit 1; }

cp -L /etc/ssl/certs/ca-certificates.crt "$dest/etc/ssl/certs/ca-certificates.crt"
ln -s /etc/ssl/certs/ca-certificates.crt "$dest/usr/lib/ssl/cert.pem"  # OpenSSL's default file
ln -s /etc/ssl/certs "$dest/usr/lib/ssl/certs"
# The login shell names a file that does not exist: there is none.
printf 'root:x:0:0:root:/nonexistent:/nonexistent\nphigate:x:10001:10001:phigate:/nonexistent:/nonexistent\n' \
  > "$dest/etc/passwd"
printf 'root:x:0:\nphigate:x:10001:\n' > "$dest/etc/group"
printf 'hosts: files dns\n' > "$dest/etc/nsswitch.conf"
mkdir -p "$dest/etc/phigate" "$dest/var/lib/phigate" "$dest/tmp"
chmod 1777 "$dest/tmp"
