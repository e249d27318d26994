#!/bin/sh
# Installs (or upgrades) hb from what `npm run package` built in dist/: one install path.
#   - With dpkg (Debian, Ubuntu): the package dist/hb_<version>_all.deb, through apt-get. An
#     existing /etc/hb/heartbeat.yaml or /etc/hb/node.env is kept as it is.
#   - Elsewhere: the same files, from dist/root (the package's tree), then the package's own
#     maintainer script. An existing /etc/hb/heartbeat.yaml or /etc/hb/node.env is kept.
# Either way: installing enables and starts nothing; an upgrade restarts the hb units that run.
# A copy installed by an earlier install.sh under /usr/local is removed first (your notify hooks
# in /usr/local/lib/hb/hooks stay). Run as root:
#   npm ci && npm run package && sudo ./systemd/install.sh [PATH/TO/hb_VERSION_all.deb]
set -eu

say() { echo "hb install: $*"; }
die() { echo "hb install: $*" >&2; exit 1; }

case ${1-} in
-h | --help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
-*) echo "install.sh: unknown argument: $1" >&2; exit 64 ;;
esac
[ "$(id -u)" = 0 ] || die "run as root (sudo $0)"
SRC=$(cd "$(dirname "$0")/.." && pwd)
VERSION=$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$SRC/package.json" | head -n 1)
DEB=$(readlink -f "${1:-$SRC/dist/hb_${VERSION}_all.deb}")
TREE=$SRC/dist/root
have() { command -v "$1" >/dev/null 2>&1; }

# An install.sh of before the package put hb under /usr/local; its units would shadow the package's.
remove_legacy() {
    legacy=/usr/local
    [ -e "$legacy/lib/systemd/system/hb-monitor.service" ] || [ -e "$legacy/lib/hb/dist" ] || return 0
    rm -f "$legacy/lib/systemd/system/hb-monitor.service" "$legacy/lib/systemd/system/hb-node@.service" \
        "$legacy/bin/hb" /etc/sysctl.d/90-hb.conf
    if [ -d "$legacy/lib/hb" ]; then
        find "$legacy/lib/hb" -mindepth 1 -maxdepth 1 ! -name hooks -exec rm -rf {} +
    fi
    say "removed the earlier install under $legacy (kept $legacy/lib/hb/hooks)"
}

# The maintainer scripts are Debian's: where init-system-helpers is missing, they get a
# deb-systemd-invoke that is plain systemctl (there is no policy-rc.d to ask).
debian_tools() {
    have deb-systemd-invoke && return 0
    tools=$(mktemp -d)
    trap 'rm -rf "$tools"' EXIT
    printf '#!/bin/sh\nexec systemctl "$@"\n' >"$tools/deb-systemd-invoke"
    chmod 0755 "$tools/deb-systemd-invoke"
    PATH=$tools:$PATH
}

if have dpkg; then
    [ -f "$DEB" ] || die "no $DEB: run 'npm ci && npm run package' first"
    remove_legacy
    # The operator's config files are kept, also where they were there before the package was.
    for path in /etc/hb/heartbeat.yaml /etc/hb/node.env; do
        [ -e "$path" ] && say "kept $path"
    done
    keep="-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold"
    if have apt-get; then
        # shellcheck disable=SC2086
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q $keep "$DEB" >/dev/null
    else
        dpkg -i --force-confdef --force-confold "$DEB" >/dev/null
    fi
    say "installed $(dpkg-query -W -f '${Package} ${Version}' hb) from $DEB"
else
    [ -d "$TREE/DEBIAN" ] || die "no $TREE: run 'npm ci && npm run package' first"
    NODE=$(command -v node) || die "node is not on the PATH"
    NODE=$(readlink -f "$NODE")
    case $NODE in /root/* | /home/*)
        die "node is at $NODE, which the services cannot reach (ProtectHome=yes); install Node.js system-wide" ;;
    esac
    "$NODE" -e 'const [maj, min] = process.versions.node.split(".").map(Number); process.exit(maj > 20 || (maj === 20 && min >= 19) ? 0 : 1)' ||
        die "$NODE is $("$NODE" --version); hb needs Node.js 20.19 or later"
    remove_legacy
    KEPT=/usr/share/hb/install
    previous=""
    [ -f "$KEPT/version" ] && previous=$(cat "$KEPT/version")
    (cd "$TREE" && find . -path ./DEBIAN -prune -o ! -type d -print) | sed 's|^\.||' | sort >"$TREE/DEBIAN/files"
    while read -r path; do
        case $path in /etc/*) [ -e "$path" ] && { say "kept $path"; continue; } ;; esac
        mkdir -p "$(dirname "$path")"
        if [ -L "$TREE$path" ]; then
            ln -sfn "$(readlink "$TREE$path")" "$path"
        else
            # Owned by root whoever built the tree: these files are run, and read, as root.
            if [ -x "$TREE$path" ]; then mode=0755; else mode=0644; fi
            install -o root -g root -m "$mode" "$TREE$path" "$path.hb-new"
            mv "$path.hb-new" "$path"
        fi
    done <"$TREE/DEBIAN/files"
    # What an earlier version installed that this one does not have.
    if [ -n "$previous" ]; then
        sort "$KEPT/files" | comm -23 - "$TREE/DEBIAN/files" | while read -r path; do
            case $path in /etc/*) ;; *) rm -f "$path" ;; esac
        done
    fi
    # The package's interpreter is Debian's /usr/bin/node; here, the node found above.
    sed -i "1s|^#!.*|#!$NODE|" /usr/share/hb/hb.mjs
    # What uninstall.sh needs: the list of files and the scripts that stop and clean up.
    install -d -m 0755 "$KEPT"
    install -m 0644 "$TREE/DEBIAN/files" "$KEPT/files"
    install -m 0755 "$TREE/DEBIAN/prerm" "$TREE/DEBIAN/postrm" "$KEPT/"
    echo "$VERSION" >"$KEPT/version"
    # As dpkg calls it: with the version configured before, on an upgrade (which restarts).
    debian_tools
    sh "$TREE/DEBIAN/postinst" configure ${previous:+"$previous"}
    say "installed hb $VERSION from $TREE"
fi
say "start with: systemctl enable --now hb-monitor; systemctl enable --now hb-node@ID"
