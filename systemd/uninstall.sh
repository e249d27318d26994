#!/bin/sh
# Removes hb as systemd/install.sh installed it: the units stop (the nodes first, so that the
# monitor hears their leave) and the files go. Keeps /etc/hb (the operator's config and keys),
# hb's state in /var/lib/hb and the notify hooks in /usr/local/lib/hb/hooks; with --purge,
# /etc/hb and the state go too. Run as root: sudo ./systemd/uninstall.sh [--purge]
set -eu

purge=""
case ${1-} in
"") ;;
--purge) purge=yes ;;
*) echo "uninstall.sh: unknown argument: $1" >&2; exit 64 ;;
esac
say() { echo "hb uninstall: $*"; }
[ "$(id -u)" = 0 ] || { echo "hb uninstall: run as root" >&2; exit 1; }
SRC=$(cd "$(dirname "$0")/.." && pwd)

if command -v dpkg >/dev/null 2>&1; then
    if [ -n "$purge" ]; then action=purge; else action=remove; fi
    if command -v apt-get >/dev/null 2>&1; then
        DEBIAN_FRONTEND=noninteractive apt-get "$action" -y -q hb >/dev/null
    else
        dpkg "--$action" hb >/dev/null
    fi
    say "$action: done"
    exit 0
fi

[ -f /usr/share/hb/files ] || { say "hb is not installed here"; exit 0; }
sh "$SRC/systemd/debian/prerm" remove
while read -r path; do
    case $path in /etc/*) continue ;; esac
    rm -f "$path"
done </usr/share/hb/files
rm -rf /usr/share/hb /usr/share/doc/hb
if [ -n "$purge" ]; then
    sh "$SRC/systemd/debian/postrm" purge
    say "removed, with /etc/hb and hb's state"
else
    sh "$SRC/systemd/debian/postrm" remove
    say "removed; kept /etc/hb and /var/lib/hb"
fi
