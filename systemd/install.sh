#!/bin/sh
# Installs (or upgrades) hb from this checkout for systemd. Idempotent; never touches an
# existing /etc/hb/heartbeat.yaml or /etc/hb/node.env. Run as root after `npm ci && npm run build`:
#   sudo ./systemd/install.sh
#
# What goes where:
#   /usr/local/lib/hb/                    the built package and its production dependencies
#   /usr/local/lib/hb/hooks/              yours (notify hooks): kept as they are on upgrade
#   /usr/local/bin/hb                     the hb command (runs the lib above with this node)
#   /usr/local/lib/systemd/system/        hb-monitor.service, hb-node@.service
#   /etc/sysctl.d/90-hb.conf              net.core.rmem_max for a large UDP receive buffer
#   /etc/hb/heartbeat.yaml                the monitor's config, only if absent
#   /etc/hb/node.env                      settings for every hb-node@ instance, only if absent
#   /etc/hb/keys/                         key files (root:hb-keys 0640), directory only if absent
#   group hb-keys                         lets the services read the key files
set -eu

PREFIX=/usr/local
ETC=/etc/hb
while [ $# -gt 0 ]; do
    case $1 in
    --prefix) PREFIX=$2; shift 2 ;;
    --prefix=*) PREFIX=${1#--prefix=}; shift ;;
    -h | --help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install.sh: unknown argument: $1" >&2; exit 64 ;;
    esac
done

say() { echo "hb install: $*"; }
die() { echo "hb install: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (sudo $0)"
SRC=$(cd "$(dirname "$0")/.." && pwd)
[ -f "$SRC/dist/bin/hb.js" ] || die "no build in $SRC/dist: run 'npm ci && npm run build' first"
NODE=$(command -v node) || die "node is not on the PATH"
NODE=$(readlink -f "$NODE")
case $NODE in /root/* | /home/*)
    die "node is at $NODE, which the services cannot reach (ProtectHome=yes); install Node.js system-wide" ;;
esac
"$NODE" -e 'const [maj, min] = process.versions.node.split(".").map(Number); process.exit(maj > 20 || (maj === 20 && min >= 19) ? 0 : 1)' ||
    die "$NODE is $("$NODE" --version); hb needs Node.js 20.19 or later"

LIB=$PREFIX/lib/hb
BIN=$PREFIX/bin/hb
UNITS=$PREFIX/lib/systemd/system
mkdir -p "$PREFIX/lib" "$PREFIX/bin" "$UNITS"

# 1. The package, staged beside its final place and swapped in whole.
STAGE=$(mktemp -d "$PREFIX/lib/.hb-stage.XXXXXX")
trap 'rm -rf "$STAGE"' EXIT
cp -R "$SRC/dist" "$SRC/systemd" "$SRC/package.json" "$SRC/package-lock.json" "$SRC/README.md" "$SRC/heartbeat.yaml" "$STAGE/"
[ -d "$SRC/docs" ] && cp -R "$SRC/docs" "$STAGE/"
# Production dependencies: copied from the checkout's node_modules when it has them (exactly
# what package-lock.json pinned, no network), else installed by npm from its cache or registry.
copy_deps() {
    [ -d "$SRC/node_modules" ] || return 1
    deps=$(cd "$SRC" && npm ls --omit=dev --all --parseable 2>/dev/null) || return 1
    for dir in $deps; do
        rel=${dir#"$SRC"/}
        [ "$rel" != "$dir" ] || continue
        mkdir -p "$STAGE/$(dirname "$rel")"
        cp -R "$dir" "$STAGE/$rel"
    done
}
npm_install() { (cd "$STAGE" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error "$@" >/dev/null); }
copy_deps || npm_install --prefer-offline || die "cannot install the production dependencies in $STAGE"
(cd "$STAGE" && "$NODE" -e 'import("pino").then(() => import("yaml"))') || die "the staged package cannot load its dependencies"
chmod -R u=rwX,go=rX "$STAGE"
# The operator's notify hooks live in $LIB/hooks: carried over as they are (owner, mode), since
# the monitor refuses to start with a hook that is missing.
[ -d "$LIB/hooks" ] && cp -a "$LIB/hooks" "$STAGE/hooks"
if [ -d "$LIB" ]; then
    rm -rf "$LIB.old"
    mv "$LIB" "$LIB.old"
fi
mv "$STAGE" "$LIB"
rm -rf "$LIB.old"
trap - EXIT
say "package in $LIB ($("$NODE" -p 'require(process.argv[1]).version' "$LIB/package.json"))"

# 2. The command, pinned to the node found now.
cat >"$BIN.tmp" <<WRAPPER
#!/bin/sh
exec $NODE $LIB/dist/bin/hb.js "\$@"
WRAPPER
chmod 0755 "$BIN.tmp"
mv "$BIN.tmp" "$BIN"
say "command $BIN (node $NODE)"

# 3. The units, pointing at this prefix.
for unit in hb-monitor.service hb-node@.service; do
    sed "s|/usr/local/|$PREFIX/|g" "$SRC/systemd/$unit" >"$UNITS/$unit.tmp"
    chmod 0644 "$UNITS/$unit.tmp"
    mv "$UNITS/$unit.tmp" "$UNITS/$unit"
done
say "units in $UNITS"

# 4. A receive buffer the monitor can grow into.
install -m 0644 "$SRC/systemd/90-hb.conf" /etc/sysctl.d/90-hb.conf
want=$(sed -n 's/^net.core.rmem_max *= *//p' "$SRC/systemd/90-hb.conf")
sysctl -q -p /etc/sysctl.d/90-hb.conf >/dev/null 2>&1 || true
have=$(sysctl -n net.core.rmem_max 2>/dev/null || echo 0)
if [ "$have" -ge "$want" ]; then
    say "net.core.rmem_max = $have"
else
    say "net.core.rmem_max is $have here; /etc/sysctl.d/90-hb.conf (= $want) applies at next boot"
fi

# 5. Configuration: the operator's files are never overwritten. Keys live in $ETC/keys, readable
#    by the services through the hb-keys group (files root:hb-keys 0640).
getent group hb-keys >/dev/null || groupadd --system hb-keys
install -d -m 0755 "$ETC"
[ -d "$ETC/keys" ] || install -d -m 0750 -o root -g hb-keys "$ETC/keys"
if [ -e "$ETC/heartbeat.yaml" ]; then
    say "kept $ETC/heartbeat.yaml"
else
    install -m 0644 "$SRC/heartbeat.yaml" "$ETC/heartbeat.yaml"
    say "installed $ETC/heartbeat.yaml (edit it, then: hb check-config && systemctl reload hb-monitor)"
fi
if [ -e "$ETC/node.env" ]; then
    say "kept $ETC/node.env"
else
    cat >"$ETC/node.env" <<'ENV'
# Settings for every hb-node@ instance; /etc/hb/node-ID.env overrides them for node ID.
# HB_MONITOR=127.0.0.1:26722          # monitor(s), comma-separated
# HB_INTERVAL=1s
ENV
    chmod 0644 "$ETC/node.env"
    say "installed $ETC/node.env"
fi

# 6. Tell systemd; restart what was running, so an upgrade takes effect.
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload
    running=$(systemctl list-units --type=service --state=active --no-legend --plain 'hb-monitor.service' 'hb-node@*.service' | awk '{print $1}')
    if [ -n "$running" ]; then
        # shellcheck disable=SC2086
        systemctl try-restart $running
        say "restarted: $(echo $running)"
    fi
    say "done. Start with: systemctl enable --now hb-monitor; systemctl enable --now hb-node@ID"
else
    say "done (systemd is not running here: no daemon-reload)"
fi
