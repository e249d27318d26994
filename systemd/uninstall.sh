#!/bin/sh
# Removes what systemd/install.sh installed: stops and disables the units, removes them, the
# package, the hb command and the sysctl drop-in. Keeps /etc/hb (the operator's config and
# keys), /usr/local/lib/hb/hooks (the operator's notify hooks) and /var/lib/hb-node (incarnation
# counters). Run as root: sudo ./systemd/uninstall.sh
set -eu

PREFIX=/usr/local
while [ $# -gt 0 ]; do
    case $1 in
    --prefix) PREFIX=$2; shift 2 ;;
    --prefix=*) PREFIX=${1#--prefix=}; shift ;;
    *) echo "uninstall.sh: unknown argument: $1" >&2; exit 64 ;;
    esac
done
say() { echo "hb uninstall: $*"; }
[ "$(id -u)" = 0 ] || { echo "hb uninstall: run as root" >&2; exit 1; }

if [ -d /run/systemd/system ]; then
    units=$(systemctl list-units --all --type=service --no-legend --plain 'hb-monitor.service' 'hb-node@*.service' | awk '{print $1}')
    # shellcheck disable=SC2086
    [ -z "$units" ] || systemctl stop $units
    systemctl disable hb-monitor.service >/dev/null 2>&1 || true
    for link in /etc/systemd/system/*.wants/hb-node@*.service; do [ -L "$link" ] && rm -f "$link"; done
fi
rm -f "$PREFIX/lib/systemd/system/hb-monitor.service" "$PREFIX/lib/systemd/system/hb-node@.service"
if [ -d "$PREFIX/lib/hb/hooks" ]; then
    # The operator's notify hooks stay, as the config that names them does.
    find "$PREFIX/lib/hb" -mindepth 1 -maxdepth 1 ! -name hooks -exec rm -rf {} +
    kept="/etc/hb, /var/lib/hb-node and $PREFIX/lib/hb/hooks"
else
    rm -rf "$PREFIX/lib/hb"
    kept="/etc/hb and /var/lib/hb-node"
fi
rm -f "$PREFIX/bin/hb" /etc/sysctl.d/90-hb.conf
[ -d /run/systemd/system ] && systemctl daemon-reload
say "removed; kept $kept"
