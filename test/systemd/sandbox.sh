#!/usr/bin/env bash
# A throw-away systemd for hb's systemd tests: systemd as PID 1 of a systemd-nspawn container
# whose root is an overlay of the host's "/" (read-only lower) and a tmpfs (upper), so it sees
# the installed node and npm, and nothing it writes reaches the host. Needs root, overlayfs,
# cgroup2 and systemd-nspawn (Debian: systemd-container).
#
#   sandbox.sh check            exit 0 if this machine can run it, else print why and exit 1
#   sandbox.sh up               boot (private network: the container has only lo)
#   sandbox.sh exec CMD...      run CMD inside (stdio and exit status passed through)
#   sandbox.sh root             the container's root directory, as seen from the host
#   sandbox.sh down             power off and remove everything
#
# Environment: HB_SANDBOX_NAME (default hb-test), HB_SANDBOX_BIND (a host directory bound
# read-only at the same path inside).
set -euo pipefail

NAME=${HB_SANDBOX_NAME:-hb-test}
DIR=/tmp/hb-sandbox/$NAME
ROOT=$DIR/root
STATE=$DIR/state
PIDFILE=$DIR/nspawn.pid
LOG=$DIR/console.log
CG=hb-sandbox-$NAME
BOOT_TIMEOUT_S=60

die() { echo "sandbox: $*" >&2; exit 1; }

cmd_check() {
    [[ $(id -u) == 0 ]] || die "not root"
    command -v systemd-nspawn >/dev/null || die "systemd-nspawn is missing (apt-get install systemd-container)"
    command -v nsenter >/dev/null || die "nsenter is missing (util-linux)"
    [[ -x /lib/systemd/systemd ]] || die "/lib/systemd/systemd is missing"
    grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null || die "no overlayfs"
    [[ -n $(cgroup_dirs) ]] || die "no usable cgroup hierarchy"
    unshare --mount true 2>/dev/null || die "cannot create mount namespaces (not privileged enough)"
}

# Where nspawn's processes are tracked: the cgroup2 hierarchy, and a name=systemd v1 one if any.
cgroup_dirs() {
    if [[ $(stat -fc %T /sys/fs/cgroup 2>/dev/null) == cgroup2fs ]]; then
        echo /sys/fs/cgroup
    else
        [[ $(stat -fc %T /sys/fs/cgroup/unified 2>/dev/null) == cgroup2fs ]] && echo /sys/fs/cgroup/unified
        [[ -d /sys/fs/cgroup/systemd ]] && echo /sys/fs/cgroup/systemd
    fi
    return 0
}

nspawn_pid() {
    local pid
    [[ -r $PIDFILE ]] && pid=$(<"$PIDFILE") && [[ -n $pid && -d /proc/$pid ]] || return 1
    [[ $(cat /proc/"$pid"/comm 2>/dev/null) == systemd-nspawn ]] || return 1
    ! grep -q '^State:[[:space:]]*Z' /proc/"$pid"/status 2>/dev/null
    echo "$pid"
}

# The host PID of the container's PID 1: nspawn's child that is PID 1 in its own namespace.
leader_pid() {
    local np c
    np=$(nspawn_pid) || return 1
    for c in $(ps -o pid= --ppid "$np" 2>/dev/null); do
        if awk '/^NSpid:/ { exit !($NF == 1 && NF > 2) }' /proc/"$c"/status 2>/dev/null; then echo "$c"; return 0; fi
    done
    return 1
}

in_container() {
    local l
    l=$(leader_pid) || die "not running"
    nsenter --target "$l" --all -- env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        HOME=/root LANG=C.UTF-8 SYSTEMD_PAGER=cat PAGER=cat "$@"
}

cmd_up() {
    cmd_check
    nspawn_pid >/dev/null && die "already up"
    mountpoint -q "$ROOT" 2>/dev/null && cmd_down
    mkdir -p "$STATE" "$ROOT"
    mount -t tmpfs -o mode=0755 "hb-sandbox-$NAME-state" "$STATE"
    mkdir "$STATE/upper" "$STATE/work"
    mount -t overlay "hb-sandbox-$NAME" -o "lowerdir=/,upperdir=$STATE/upper,workdir=$STATE/work" "$ROOT"
    echo "$NAME" >"$ROOT/etc/hostname"
    tr -d '-' </proc/sys/kernel/random/uuid >"$ROOT/etc/machine-id"
    mkdir -p "$ROOT/etc/systemd/system"
    # Boot only what tests need, not the services the host image enables.
    printf '[Unit]\nDescription=hb test sandbox\nRequires=sysinit.target sockets.target\nAfter=sysinit.target sockets.target\nAllowIsolate=yes\n' \
        >"$ROOT/etc/systemd/system/hb-sandbox.target"
    : >"$LOG"
    local cg bind=()
    for cg in $(cgroup_dirs); do mkdir -p "$cg/$CG"; done
    cg=$(cgroup_dirs | head -n1)
    [[ -n ${HB_SANDBOX_BIND:-} ]] && bind=(--bind-ro="$HB_SANDBOX_BIND")
    (
        echo "$BASHPID" >"$cg/$CG/cgroup.procs"
        exec setsid unshare --mount --propagation private -- /bin/sh -c '
            pidfile=$1; shift
            mkdir -p /run/systemd && mount -t tmpfs -o mode=0755 hb-sandbox-run /run/systemd || exit 1
            echo $$ > "$pidfile"
            exec "$@"' sh "$PIDFILE" \
            systemd-nspawn --quiet --directory="$ROOT" --machine="$NAME" --boot --register=no --keep-unit \
            --link-journal=no --console=read-only --resolv-conf=off --timezone=off --private-network \
            "${bind[@]}" systemd.unit=hb-sandbox.target
    ) </dev/null >>"$LOG" 2>&1 &
    local i state=
    for ((i = 0; i < BOOT_TIMEOUT_S * 10; i++)); do
        if leader_pid >/dev/null; then
            state=$(in_container systemctl is-system-running 2>/dev/null || true)
            [[ $state == running || $state == degraded ]] && break
        elif ((i > 30)) && ! nspawn_pid >/dev/null; then
            break
        fi
        sleep 0.1
    done
    if [[ $state != running && $state != degraded ]]; then
        tail -n 30 "$LOG" >&2 || true
        cmd_down
        die "boot did not finish (state '${state:-none}')"
    fi
    echo "sandbox: up ($state)" >&2
}

cmd_down() {
    local np i cg d
    if np=$(nspawn_pid); then
        kill -TERM "$np" 2>/dev/null || true
        for ((i = 0; i < 150; i++)); do [[ -d /proc/$np ]] || break; sleep 0.1; done
        [[ -d /proc/$np ]] && { leader_pid | xargs -r kill -KILL 2>/dev/null; kill -KILL "$np" 2>/dev/null; sleep 0.5; } || true
    fi
    for cg in $(cgroup_dirs); do
        d=$cg/$CG
        [[ -d $d ]] || continue
        if [[ -e $d/cgroup.kill ]]; then echo 1 >"$d/cgroup.kill" 2>/dev/null || true
        else find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null | xargs -r kill -KILL 2>/dev/null || true; fi
        for ((i = 0; i < 50; i++)); do
            find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || true
            [[ -d $d ]] || break
            sleep 0.1
        done
    done
    for d in "$ROOT" "$STATE"; do
        mountpoint -q "$d" 2>/dev/null && { umount "$d" 2>/dev/null || { sleep 0.5; umount "$d"; } || umount -l "$d"; }
    done
    rm -f "$PIDFILE" "$LOG" "$DIR/.#root.lck"
    rmdir "$ROOT" "$STATE" "$DIR" 2>/dev/null || true
    return 0
}

sub=${1:-}
shift || true
case $sub in
check) cmd_check ;;
up) cmd_up ;;
exec) in_container "$@" ;;
root) echo "$ROOT" ;;
down) cmd_down ;;
*) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
