#!/bin/sh
# Lints unit files with systemd-analyze verify, which exits 0 even on unknown keys and bad
# values: any diagnostic at all fails here. Runs in a private mount namespace where /usr/bin/hb
# (over an overlay of /usr/bin) and the example's /usr/local/lib/hb/hooks/monitor-failed exist
# (as on an installed host) and /run/systemd is private, so the lint needs no installation and
# leaves nothing behind. Drop-ins in UNIT-FILE.d/ beside a unit file are linted with it. Needs root and
# systemd-analyze.
set -eu
[ $# -gt 0 ] || { echo "usage: verify.sh UNIT-FILE..." >&2; exit 2; }
files=""
for f in "$@"; do files="$files $(readlink -f "$f")"; done
# shellcheck disable=SC2086
out=$(unshare --mount --propagation private -- /bin/sh -c '
    set -e
    mkdir -p /run/systemd && mount -t tmpfs hb-verify-run /run/systemd
    layer=/run/systemd/hb-verify-bin && mkdir -p $layer/upper $layer/work
    mount -t overlay hb-verify-bin -o lowerdir=/usr/bin,upperdir=$layer/upper,workdir=$layer/work /usr/bin
    printf "#!/bin/sh\n" > /usr/bin/hb && chmod 755 /usr/bin/hb
    mkdir -p /usr/local/lib && mount -t tmpfs hb-verify-lib /usr/local/lib
    mkdir -p /usr/local/lib/hb/hooks
    printf "#!/bin/sh\n" > /usr/local/lib/hb/hooks/monitor-failed && chmod 755 /usr/local/lib/hb/hooks/monitor-failed
    exec systemd-analyze verify --man=no "$@"' sh $files 2>&1) || { printf '%s\n' "$out" >&2; exit 1; }
[ -z "$out" ] || { printf '%s\n' "$out" >&2; exit 1; }
echo "verify: $# unit file(s) clean"
