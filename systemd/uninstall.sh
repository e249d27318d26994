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

KEPT=/usr/share/hb/install
[ -f "$KEPT/files" ] || { say "hb is not installed here"; exit 0; }
scripts=$(mktemp -d)
trap 'rm -rf "$scripts"' EXIT
cp "$KEPT/prerm" "$KEPT/postrm" "$scripts/"
# The maintainer scripts are Debian's: where init-system-helpers is missing, deb-systemd-invoke
# is plain systemctl.
if ! command -v deb-systemd-invoke >/dev/null 2>&1; then
    printf '#!/bin/sh\nexec systemctl "$@"\n' >"$scripts/deb-systemd-invoke"
    chmod 0755 "$scripts/deb-systemd-invoke"
    PATH=$scripts:$PATH
fi
sh "$scripts/prerm" remove
while read -r path; do
    case $path in /etc/*) continue ;; esac
    rm -f "$path"
done <"$KEPT/files"
rm -rf /usr/share/hb /usr/share/doc/hb
if [ -n "$purge" ]; then
    sh "$scripts/postrm" purge
    say "removed, with /etc/hb and hb's state"
else
    sh "$scripts/postrm" remove
    say "removed; kept /etc/hb and /var/lib/hb"
fi
