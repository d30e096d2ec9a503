# shellcheck shell=bash
# Build (once, cached) the Debian bookworm root filesystem image used by the
# User-Mode Linux test guests (lib/lflab/harness.py).
#
#   bash lib/lflab/build-image.sh       -> prints the image path as the last stdout line
#   LOGFWDR_UML_CACHE=/some/dir ...     -> cache location (default /var/cache/logfwdr-uml)
#   LOGFWDR_UML_MIRROR=http://...       -> Debian mirror (default http://deb.debian.org/debian)
#   LOGFWDR_UML_FORCE=1                 -> rebuild the image even if cached (reuses the
#                                          cached debootstrap tree; =full redoes that too)
#
# The image name is base-<hash>.img; the hash covers this script (package list,
# /sbin/lf-init, build steps) and the UML kernel module version, so editing any of
# them produces a new image.  All logging goes to stderr.
set -euo pipefail

CACHE=${LOGFWDR_UML_CACHE:-/var/cache/logfwdr-uml}
MIRROR=${LOGFWDR_UML_MIRROR:-http://deb.debian.org/debian}
SUITE=bookworm
IMG_SIZE=2G
PACKAGES=(
    systemd-sysv udev kmod iproute2 openssh-server python3 python3-pyroute2 python3-prometheus-client
    rsyslog keepalived tcpdump netbase iputils-ping procps snmp snmptrapd
    nfdump softflowd pmacct socat ca-certificates python3-apt dbus rsyslog-gnutls nftables prometheus
    frr frr-pythontools
)

log() { printf '[build-image] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root"
for tool in debootstrap mkfs.ext4 sha256sum flock; do
    command -v "$tool" >/dev/null || die "missing tool: $tool"
done

MODROOT=/usr/lib/uml/modules
KVER=$(find "$MODROOT" -mindepth 1 -maxdepth 1 -printf '%f\n' 2>/dev/null | sort -V | tail -n1)
if [ -z "$KVER" ] || [ ! -d "$MODROOT/$KVER" ]; then
    die "no UML modules under $MODROOT (install user-mode-linux)"
fi

SELF=$(readlink -f "${BASH_SOURCE[0]}")
HASH=$( { cat "$SELF"; echo "kver=$KVER"; echo "suite=$SUITE"; printf '%s\n' "${PACKAGES[@]}"; } \
        | sha256sum | cut -c1-16)
IMG="$CACHE/base-$HASH.img"

mkdir -p "$CACHE"
if [ -s "$IMG" ] && [ -z "${LOGFWDR_UML_FORCE:-}" ]; then
    log "cached: $IMG"
    echo "$IMG"
    exit 0
fi

# Serialise concurrent builders (e.g. parallel pytest workers).
exec 9>"$CACHE/.build.lock"
flock 9
if [ -s "$IMG" ] && [ -z "${LOGFWDR_UML_FORCE:-}" ]; then
    log "cached (built by a concurrent run): $IMG"
    echo "$IMG"
    exit 0
fi

T0=$EPOCHREALTIME
elapsed() { awk -v a="$T0" -v b="$EPOCHREALTIME" 'BEGIN{printf "%.1f", b-a}'; }

WORK=$(mktemp -d "$CACHE/build-$HASH.XXXXXX")
ROOT="$WORK/root"
cleanup() {
    # never leave bind/proc mounts behind inside the build root
    for m in proc sys dev/pts dev; do
        if mountpoint -q "$ROOT/$m" 2>/dev/null; then umount -l "$ROOT/$m" || true; fi
    done
    rm -rf "$WORK"
}
trap cleanup EXIT

# Stage 1 (slow, ~2 min): debootstrap.  Its result is cached as a tarball keyed only
# on suite + mirror + package list, so editing the customisation below (lf-init, ...)
# rebuilds the image in seconds.
STAGE1_REV=1  # bump when changing the debootstrap step itself
PKGHASH=$(printf '%s\n' "$STAGE1_REV" minbase "$SUITE" "$MIRROR" "${PACKAGES[@]}" | sha256sum | cut -c1-16)
ROOTTAR="$CACHE/rootfs-$PKGHASH.tar"
mkdir -p "$ROOT"
if [ -s "$ROOTTAR" ] && [ "${LOGFWDR_UML_FORCE:-}" != full ]; then
    log "extracting cached debootstrap tree $ROOTTAR"
    tar -C "$ROOT" --numeric-owner --xattrs --xattrs-include='*' -xpf "$ROOTTAR"
else
    mkdir -p "$CACHE/debs"
    INCLUDE=$(IFS=,; echo "${PACKAGES[*]}")
    log "debootstrap $SUITE (minbase + ${#PACKAGES[@]} packages) from $MIRROR"
    debootstrap --variant=minbase --cache-dir="$CACHE/debs" --include="$INCLUDE" \
        "$SUITE" "$ROOT" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 &
    DB_PID=$!
    # about 2 minutes: say what it is doing every 15 s (its own "I: ..." lines, from the log)
    while kill -0 "$DB_PID" 2>/dev/null; do
        for _ in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15; do kill -0 "$DB_PID" 2>/dev/null && sleep 1; done
        kill -0 "$DB_PID" 2>/dev/null && log "debootstrap, $(elapsed)s: $(grep '^I: ' "$WORK/debootstrap.log" | tail -n1 | cut -c4-90)"
    done
    wait "$DB_PID" || {
        tail -n 40 "$WORK/debootstrap.log" >&2
        die "debootstrap failed (full log was $WORK/debootstrap.log)"
    }
    rm -rf "$ROOT"/var/cache/apt/*.bin "$ROOT"/var/lib/apt/lists/* "$ROOT"/var/cache/apt/archives/*.deb
    tar -C "$ROOT" --numeric-owner --xattrs --xattrs-include='*' -cf "$ROOTTAR.tmp" .
    mv -f "$ROOTTAR.tmp" "$ROOTTAR"
fi
log "root tree ready after $(elapsed)s"

# --- kernel modules for the UML kernel -------------------------------------
mkdir -p "$ROOT/lib/modules"
cp -a "$MODROOT/$KVER" "$ROOT/lib/modules/$KVER"
# the package ships modules.dep; regenerate it with the guest's own kmod anyway
chroot "$ROOT" depmod "$KVER"

# --- general system configuration (also used later by systemd guests) ------
echo lfguest >"$ROOT/etc/hostname"
printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' >"$ROOT/etc/hosts"
printf '/dev/ubda\t/\text4\tdefaults,errors=remount-ro\t0\t1\n' >"$ROOT/etc/fstab"
# empty machine-id: systemd generates a fresh one per boot (per guest)
: >"$ROOT/etc/machine-id"
rm -f "$ROOT/var/lib/dbus/machine-id"
# no login needed for now; empty root password keeps console login possible
chroot "$ROOT" passwd -d root >/dev/null
# apt sources for debugging inside a guest
echo "deb $MIRROR $SUITE main" >"$ROOT/etc/apt/sources.list"
mkdir -p "$ROOT/share" "$ROOT/repo"

# --- /sbin/lf-init: minimal PID 1 for scripted test guests ------------------
# Every fork costs tens of milliseconds under UML, so lf-init uses shell builtins
# where it can (one mount -a for the pseudo file systems, /proc writes, sysrq).
cat >"$ROOT/etc/lf-init.fstab" <<'FSTAB'
proc     /proc     proc     defaults                   0 0
sysfs    /sys      sysfs    defaults                   0 0
devtmpfs /dev      devtmpfs defaults                   0 0
devpts   /dev/pts  devpts   X-mount.mkdir,gid=5,mode=620 0 0
tmpfs    /dev/shm  tmpfs    X-mount.mkdir              0 0
tmpfs    /run      tmpfs    mode=755                   0 0
tmpfs    /tmp      tmpfs    mode=1777                  0 0
FSTAB
cat >"$ROOT/sbin/lf-init" <<'LFINIT'
#!/bin/bash
# lf-init: PID 1 for logfwdr UML test guests (boot with init=/sbin/lf-init).
# Kernel command line:
#   lf.name=NAME         hostname
#   lf.share=/host/dir   host dir mounted (hostfs, rw) on /share; /share/run.sh is run
#                        by bash, stdout+stderr -> /share/output.log, exit code -> /share/rc
#   lf.repo=/host/dir    host dir mounted read-only on /repo
# Then the machine powers off at once (the linux.uml process exits).
# Progress messages go to the kernel console (console.log on the host).
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root LANG=C.UTF-8 TERM=dumb
msg() { local up; read -r up _ </proc/uptime 2>/dev/null; echo "lf-init[$up]: $*" >&2; }
mount -a -T /etc/lf-init.fstab
[ -e /dev/fd ] || ln -s /proc/self/fd /dev/fd

name= share= repo=
read -r -a args </proc/cmdline
for arg in "${args[@]}"; do
    case "$arg" in
        lf.name=*)  name=${arg#lf.name=} ;;
        lf.share=*) share=${arg#lf.share=} ;;
        lf.repo=*)  repo=${arg#lf.repo=} ;;
    esac
done
if [ -n "$name" ]; then
    echo "$name" >/proc/sys/kernel/hostname
    echo "$name" >/etc/hostname
fi
ip link set lo up

rc=0
if [ -n "$share" ] && mount -t hostfs -o "$share" none /share; then
    if [ -n "$repo" ]; then
        mount -t hostfs -o "ro,$repo" none /repo || msg "cannot mount repo $repo"
    fi
    if [ -f /share/run.sh ]; then
        msg "running /share/run.sh"
        (cd /root && exec bash /share/run.sh) </dev/null >/share/output.log 2>&1
        rc=$?
    else
        echo "lf-init: /share/run.sh missing" >/share/output.log
        rc=127
    fi
    echo "$rc" >/share/rc
    msg "run.sh exit code $rc, powering off"
else
    msg "no usable lf.share= ($share): nothing to run"
fi
sync
# sysrq 'o' = immediate kernel power-off (no fork needed); the UML process exits.
echo o >/proc/sysrq-trigger
sleep 10
poweroff -f -f
msg "poweroff failed"
exec sleep infinity
LFINIT
chmod 755 "$ROOT/sbin/lf-init"

# --- systemd boots (lab/labctl): identity from the kernel command line -----
# lf-init above is the fast path for scripted tests; guests booted without init= run
# systemd, and lf-identity.service (early, before networkd and sshd) configures them.
cat >"$ROOT/usr/local/sbin/lf-identity" <<'LFID'
#!/bin/bash
# lf-identity: per-guest identity for systemd-booted lab guests, from /proc/cmdline:
#   lf.name=NAME                       hostname (+ /etc/hostname, /etc/hosts)
#   lf.net=vec0=10.99.0.11/24,vec1=... /etc/systemd/network/10-lf-<nic>.network per named
#                                      NIC; NICs not named stay unmanaged by networkd
#   lf.share=/host/dir                 hostfs share mounted on /share (rw); from it:
#                                      authorized_keys -> /root/.ssh/authorized_keys,
#                                      ssh_host_ed25519_key{,.pub} -> /etc/ssh/
#   lf.sysctl=key=val,key=val          /etc/sysctl.d/90-lf-identity.conf (read later by
#                                      systemd-sysctl and udev for each new interface)
#   lf.rename=vec1=eno1,...            renames NICs (before udev and networkd see them), so a
#                                      lab host can carry a real inventory's interface names
# Generates an SSH host key if none was given.  Forks are slow under UML: builtins only,
# apart from mount (and ssh-keygen as a fallback).
set -u
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
umask 022
copy() {  # copy SRC DST (builtins only)
    local data
    IFS= read -r -d '' data <"$1" || true
    printf '%s' "$data" >"$2"
}
name= net= share= sysctls= renames=
read -r -a args </proc/cmdline
for arg in "${args[@]}"; do
    case "$arg" in
        lf.rename=*) renames=${arg#lf.rename=} ;;
        lf.name=*)   name=${arg#lf.name=} ;;
        lf.net=*)    net=${arg#lf.net=} ;;
        lf.share=*)  share=${arg#lf.share=} ;;
        lf.sysctl=*) sysctls=${arg#lf.sysctl=} ;;
    esac
done
if [ -n "$name" ]; then
    echo "$name" >/proc/sys/kernel/hostname
    echo "$name" >/etc/hostname
    printf '127.0.0.1\tlocalhost\n127.0.1.1\t%s\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' \
        "$name" >/etc/hosts
fi
if [ -n "$renames" ]; then
    IFS=, read -r -a pairs <<<"$renames"
    for item in "${pairs[@]}"; do
        ip link set dev "${item%%=*}" name "${item#*=}" || echo "lf-identity: cannot rename $item" >&2
    done
fi
if [ -n "$net" ]; then
    IFS=, read -r -a nets <<<"$net"
    for item in "${nets[@]}"; do
        ifname=${item%%=*} addr=${item#*=}
        printf '%s\n' "[Match]" "Name=$ifname" "" "[Link]" "RequiredForOnline=yes" "" \
            "[Network]" "Address=$addr" "LinkLocalAddressing=no" "IPv6AcceptRA=no" \
            "ConfigureWithoutCarrier=yes" >"/etc/systemd/network/10-lf-$ifname.network"
    done
fi
if [ -n "$sysctls" ]; then
    IFS=, read -r -a kvs <<<"$sysctls"
    printf '%s\n' "${kvs[@]}" >/etc/sysctl.d/90-lf-identity.conf
fi
if [ -n "$share" ]; then
    if mount -t hostfs -o "$share" none /share; then
        umask 077
        [ -s /share/authorized_keys ] && copy /share/authorized_keys /root/.ssh/authorized_keys
        if [ -s /share/ssh_host_ed25519_key ]; then
            copy /share/ssh_host_ed25519_key /etc/ssh/ssh_host_ed25519_key
            umask 022
            copy /share/ssh_host_ed25519_key.pub /etc/ssh/ssh_host_ed25519_key.pub
        fi
        umask 022
    else
        echo "lf-identity: cannot mount hostfs $share" >&2
    fi
fi
if [ ! -s /etc/ssh/ssh_host_ed25519_key ]; then
    ssh-keygen -q -t ed25519 -N '' -C "root@${name:-lfguest}" -f /etc/ssh/ssh_host_ed25519_key
fi
exit 0
LFID
chmod 755 "$ROOT/usr/local/sbin/lf-identity"
cat >"$ROOT/etc/systemd/system/lf-identity.service" <<'UNIT'
[Unit]
Description=logfwdr lab identity (hostname, addresses, share, SSH keys) from /proc/cmdline
DefaultDependencies=no
Before=sysinit.target systemd-sysctl.service systemd-udev-trigger.service systemd-networkd.service ssh.service shutdown.target
Conflicts=shutdown.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/local/sbin/lf-identity

[Install]
WantedBy=sysinit.target
UNIT
# each guest gets its own host key (lf-identity); sshd: keys only, one host key type
rm -f "$ROOT"/etc/ssh/ssh_host_*
install -d -m 700 "$ROOT/root/.ssh"
mkdir -p "$ROOT/etc/systemd/network" "$ROOT/etc/sysctl.d"
mkdir -p "$ROOT/etc/systemd/system/ssh.service.d"
printf '[Service]\n# skip the extra sshd -t run at boot (each exec costs under UML)\nExecStartPre=\n' \
    >"$ROOT/etc/systemd/system/ssh.service.d/lf-lab.conf"
# udev coldplug: only network and block devices matter here (networkd waits for udev to
# initialise links; systemd waits for the root disk).  Skips ~90 tty/mem/misc events.
mkdir -p "$ROOT/etc/systemd/system/systemd-udev-trigger.service.d"
cat >"$ROOT/etc/systemd/system/systemd-udev-trigger.service.d/lf-lab.conf" <<'TRIG'
[Service]
ExecStart=
ExecStart=-udevadm trigger --type=subsystems --action=add --subsystem-match=net --subsystem-match=block
ExecStart=-udevadm trigger --type=devices --action=add --subsystem-match=net --subsystem-match=block
TRIG
cat >"$ROOT/etc/ssh/sshd_config.d/lf-lab.conf" <<'SSHD'
HostKey /etc/ssh/ssh_host_ed25519_key
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
SSHD
chroot "$ROOT" systemctl enable -q lf-identity.service systemd-networkd.service ssh.service
# Package daemons that listen on collector ports (nfcapd on udp/2055, snmptrapd on
# udp/162, snmpd, softflowd) stay off, and Prometheus, which only the lab's monitoring host runs, and FRR, which
# only the BGP lab's router (lab/playbooks/router.yml) and the replicators in BGP mode (the role) run: tests and
# roles start what they need.
chroot "$ROOT" systemctl disable -q nfdump.service softflowd.service snmpd.service \
    snmptrapd.socket snmptrapd.service prometheus.service frr.service
# Every fork is slow under UML and eight guests share two cores: drop boot work a
# throw-away lab guest does not need (periodic jobs, pseudo file systems, gettys on the
# null console, utmp, sysusers (users exist already), generators for absent features).
# kmod-static-nodes stays: it makes /dev/net/tun (and other module-backed nodes) at boot as on any Debian host, so
# opening it loads tun (the agent's announce device in BGP mode).
chroot "$ROOT" systemctl mask -q apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer \
    e2scrub_reap.service fstrim.timer man-db.timer dpkg-db-backup.timer \
    getty@tty1.service getty-static.service serial-getty@ttyS0.service console-getty.service \
    systemd-binfmt.service proc-sys-fs-binfmt_misc.automount proc-sys-fs-binfmt_misc.mount \
    sys-fs-fuse-connections.mount sys-kernel-config.mount sys-kernel-debug.mount \
    sys-kernel-tracing.mount dev-hugepages.mount modprobe@fuse.service \
    modprobe@efi_pstore.service modprobe@dm_mod.service modprobe@drm.service \
    modprobe@configfs.service systemd-pstore.service systemd-network-generator.service \
    systemd-update-utmp.service systemd-update-utmp-runlevel.service \
    systemd-journal-flush.service systemd-sysusers.service systemd-firstboot.service \
    modprobe@loop.service dev-mqueue.mount \
    systemd-random-seed.service
mkdir -p "$ROOT/etc/systemd/system-generators"
for gen in systemd-sysv-generator systemd-gpt-auto-generator systemd-getty-generator \
           systemd-hibernate-resume-generator systemd-cryptsetup-generator \
           systemd-integritysetup-generator systemd-veritysetup-generator \
           systemd-system-update-generator systemd-rc-local-generator \
           nfdump-generator softflowd-generator; do
    ln -sf /dev/null "$ROOT/etc/systemd/system-generators/$gen"
done

# --- image ------------------------------------------------------------------
log "mkfs.ext4 -d ($(du -sh "$ROOT" | cut -f1) of files, ${IMG_SIZE} sparse image)"
TMPIMG="$WORK/base.img"
truncate -s "$IMG_SIZE" "$TMPIMG"
mkfs.ext4 -q -F -L lfroot -d "$ROOT" "$TMPIMG" "$IMG_SIZE" >&2
mv -f "$TMPIMG" "$IMG"
log "built $IMG in $(elapsed)s"
echo "$IMG"
