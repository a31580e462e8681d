#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Run a command as root inside Debian 12's own kernel (linux-image 6.1) under
# QEMU with software emulation (TCG), with the host directory $KVM_SHARE
# visible inside the guest at the same absolute path (virtio 9p).
#
#   tests/kernels/vm.sh build
#       Build (once) and cache the kernel, its initramfs and an ext4 root
#       file system image made with debootstrap from the Debian archive.
#       Idempotent: does nothing when the cache matches this script.
#   tests/kernels/vm.sh run [--mem MB] [--smp N] [--timeout SECONDS] -- CMD [ARGS...]
#       Boot the guest, run CMD as root with cwd = $KVM_SHARE, stream its
#       stdout+stderr to this stdout, power the guest off, exit with CMD's
#       status. 124: timeout (qemu killed); 125: the guest never reported a
#       status (boot failure; the console log is shown on stderr).
#   tests/kernels/vm.sh info
#       Print the cached kernel release and the artefacts.
#
# Environment:
#   KVM_CACHE    cache dir (default: <repo>/build/kernels, git-ignored)
#   KVM_SHARE    host directory shared with the guest (default: the repo root)
#   KVM_KERNEL   kernel flavour package, e.g. linux-image-6.1.0-56-amd64
#                (default: what bookworm's linux-image-amd64 depends on, i.e.
#                the newest 6.1 in the archive at build time)
#   KVM_MIRROR   Debian mirror (default: from /etc/apt, else deb.debian.org)
#   KVM_SECURITY_MIRROR  (default: from /etc/apt, else deb.debian.org/debian-security)
#   KVM_EXTRA_PKGS  more Debian packages for the root file system
#   KVM_REBUILD=1   build even when the cache is up to date
#   KVM_TIMEOUT  default for --timeout (1800)
#   KVM_MEM, KVM_SMP  defaults for --mem (2048) and --smp (2)
#   KVM_VERBOSE=1   also copy the guest's console (kernel, init) to stderr
#
# Needs root and the host packages: qemu-system-x86 debootstrap e2fsprogs
# (tests/kernels/README.md).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
KVM_CACHE=${KVM_CACHE:-$repo/build/kernels}
KVM_SHARE=${KVM_SHARE:-$repo}
SUITE=bookworm
# Bump when the layout of the cache or the build steps change.
BUILD_FORMAT=4

# The root file system: what the lab scripts (tests/lab) run, plus the
# run-time libraries of choreod / choreoctl built on the (bookworm) host.
ROOT_PKGS=(
	# the guest's own plumbing
	kmod procps util-linux busybox iproute2 iputils-ping zstd initramfs-tools
	# tools of the lab scripts and the feature probe
	nftables conntrack python3 perl unbound nsd dnsutils knot-dnsutils nmap
	curl openssl ca-certificates tcpdump strace netcat-openbsd psmisc less
	# libraries choreod and choreoctl link against (ldd build/choreod)
	libknot13 libzscanner4 libnftnl11 libmnl0
)
# modules the initramfs must carry (root on virtio-blk ext4; 9p share)
INITRD_MODULES=(virtio_pci virtio_blk virtio_console virtio_rng ext4 crc32c_generic 9pnet 9pnet_virtio 9p)

log() { echo "vm.sh: $*" >&2; }
die() { echo "vm.sh: error: $*" >&2; exit 2; }

usage() {
	awk 'NR > 3 && /^set -euo/ { exit } NR > 3 { sub(/^# ?/, ""); print }' "${BASH_SOURCE[0]}" >&2
	exit 2
}

need_root() { [ "$(id -u)" = 0 ] || die "must run as root"; }

need_cmd() {
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null ||
			die "$c is missing: apt-get install qemu-system-x86 debootstrap e2fsprogs"
	done
}

# ---------------------------------------------------------------------------
# Mirrors: the Debian mirror this host's apt uses (one-line or deb822
# sources), else deb.debian.org.
apt_uris() {
	local f
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
		[ -r "$f" ] || continue
		grep -hE '^[[:space:]]*(deb[[:space:]]|URIs:)' "$f" |
			grep -oE '(https?|file)://[^[:space:]]+' || true
	done
}
pick_mirrors() {
	if [ -z "${KVM_MIRROR:-}" ]; then
		KVM_MIRROR=$(apt_uris | grep -E '/debian/?$' | head -n 1 || true)
		KVM_MIRROR=${KVM_MIRROR:-http://deb.debian.org/debian}
	fi
	if [ -z "${KVM_SECURITY_MIRROR:-}" ]; then
		KVM_SECURITY_MIRROR=$(apt_uris | grep -E '/debian-security/?$' | head -n 1 || true)
		KVM_SECURITY_MIRROR=${KVM_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
	fi
	KVM_MIRROR=${KVM_MIRROR%/}
	KVM_SECURITY_MIRROR=${KVM_SECURITY_MIRROR%/}
}

# ---------------------------------------------------------------------------
# Stage 1 of the guest's init, baked into the root file system: mount the
# kernel file systems, load 9p, mount the per-run control share and hand
# over to the stage-2 script that `run` writes there (so the run logic can
# change without a rebuild). No systemd: nothing else (Unbound, NSD) starts.
stage1_init() {
	cat <<'EOF'
#!/bin/bash
# /sbin/choreo-vm-init: PID 1 of the choreo test VM (tests/kernels/vm.sh).
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
fail() {
	echo "choreo-vm-init: $*" >/dev/console
	echo "CHOREO_VM_STATUS=125" >/dev/console
	busybox poweroff -f 2>/dev/null
	echo o >/proc/sysrq-trigger
	sleep 10
}
mountpoint -q /proc || mount -t proc -o nosuid,nodev,noexec proc /proc
mountpoint -q /sys || mount -t sysfs -o nosuid,nodev,noexec sysfs /sys
mountpoint -q /dev || mount -t devtmpfs -o mode=0755,nosuid devtmpfs /dev
mountpoint -q /run || mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /run
mount -o remount,rw / 2>/dev/null
modprobe -q 9pnet_virtio; modprobe -q 9p
mkdir -p /run/vmctl
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 vmctl /run/vmctl ||
	fail "cannot mount the control share (9p)"
[ -r /run/vmctl/stage2 ] || fail "no /run/vmctl/stage2"
exec /bin/bash /run/vmctl/stage2
fail "exec stage2 failed"
EOF
}

# Stage 2, written into the control share by `run`. Runs as PID 1 (bash
# reaps orphans: its wait uses waitpid(-1)).
stage2_init() {
	cat <<'EOF'
# choreo VM stage 2 (written by tests/kernels/vm.sh run)
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root LANG=C.UTF-8 TERM=dumb SHELL=/bin/bash USER=root LOGNAME=root
umask 022
ctl=/run/vmctl
say() { echo "choreo-vm: $*" >/dev/console; }
finish() {
	echo "$1" >"$ctl/status.tmp" && mv -f "$ctl/status.tmp" "$ctl/status"
	echo "CHOREO_VM_STATUS=$1" >/dev/console
	sync
	busybox poweroff -f 2>/dev/null
	echo o >/proc/sysrq-trigger
	sleep 10
}
mkdir -p /dev/pts /dev/shm /sys/fs/cgroup
mountpoint -q /dev/pts || mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts
mountpoint -q /dev/shm || mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /dev/shm
mountpoint -q /tmp || mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /tmp
mountpoint -q /sys/fs/cgroup || mount -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup 2>/dev/null
mountpoint -q /sys/kernel/debug || mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
mountpoint -q /sys/fs/bpf || mount -t bpf -o mode=700 bpf /sys/fs/bpf 2>/dev/null
[ -e /dev/fd ] || ln -s /proc/self/fd /dev/fd
[ -e /dev/stdin ] || ln -s /proc/self/fd/0 /dev/stdin
[ -e /dev/stdout ] || ln -s /proc/self/fd/1 /dev/stdout
[ -e /dev/stderr ] || ln -s /proc/self/fd/2 /dev/stderr
mount -o remount,exec /run 2>/dev/null   # initramfs-tools leaves it noexec
mkdir -p /run/netns /run/lock /var/log /var/tmp
# limits as under systemd: nofile soft 1024, hard 524288
ulimit -Hn 524288 2>/dev/null; ulimit -Sn 1024
hostname choreo-vm
ip link set lo up
modprobe -q virtio_rng 2>/dev/null
share=$(cat "$ctl/share")
mkdir -p "$share"
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 share "$share" ||
	{ say "cannot mount the share $share"; finish 125; }
# CMD's stdout+stderr -> a FIFO -> cat -> ttyS1 (raw) -> qemu -> host stdout.
# CMD sees a pipe, not a terminal; stdin is /dev/null.
stty -F /dev/ttyS1 raw -echo 2>/dev/null
mkfifo /run/vmout
cat /run/vmout >/dev/ttyS1 &
catpid=$!
( cd "$share" && exec /bin/bash "$ctl/cmd" ) >/run/vmout 2>&1 </dev/null
rc=$?
# let cat drain; a daemon CMD left behind may still hold the FIFO open
for _ in $(seq 1 50); do
	kill -0 "$catpid" 2>/dev/null || break
	sleep 0.1
done
kill "$catpid" 2>/dev/null
finish "$rc"
EOF
}

# ---------------------------------------------------------------------------
# build

build_stamp() {
	{
		echo "format=$BUILD_FORMAT suite=$SUITE kernel=${KVM_KERNEL:-meta}"
		echo "mirror=$KVM_MIRROR security=$KVM_SECURITY_MIRROR"
		echo "pkgs=${ROOT_PKGS[*]} ${KVM_EXTRA_PKGS:-}"
		echo "initrd=${INITRD_MODULES[*]}"
		stage1_init
	} | sha256sum | cut -d' ' -f1
}

# chroot_run ROOT CMD...: a command inside the build chroot, clean env.
chroot_run() {
	local root=$1; shift
	chroot "$root" /usr/bin/env -i \
		PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		HOME=/root LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive \
		DEBCONF_NONINTERACTIVE_SEEN=true "$@"
}

BUILD_WORK=""
build_cleanup() {
	local rc=$? m
	if [ -n "$BUILD_WORK" ] && [ -d "$BUILD_WORK" ]; then
		if [ "$rc" != 0 ] && [ -f "$BUILD_WORK/build.log" ]; then
			cp "$BUILD_WORK/build.log" "$KVM_CACHE/build.log" 2>/dev/null || true
		fi
		# unmount whatever we mounted under the chroot (deepest first)
		for m in $(findmnt -rn -o TARGET | grep -F "$BUILD_WORK/" | sort -r); do
			umount -l "$m" 2>/dev/null || true
		done
		if findmnt -rn -o TARGET | grep -qF "$BUILD_WORK/"; then
			log "left $BUILD_WORK in place: something is still mounted under it"
		else
			rm -rf --one-file-system "$BUILD_WORK"
		fi
	fi
	return "$rc"
}

cmd_build() {
	need_root
	need_cmd debootstrap mkfs.ext4 chroot findmnt sha256sum
	pick_mirrors
	local stamp cur=""
	stamp=$(build_stamp)
	[ -r "$KVM_CACHE/stamp" ] && cur=$(cat "$KVM_CACHE/stamp")
	if [ "${KVM_REBUILD:-0}" != 1 ] && [ "$cur" = "$stamp" ] &&
		[ -s "$KVM_CACHE/vmlinuz" ] && [ -s "$KVM_CACHE/initrd.img" ] &&
		[ -s "$KVM_CACHE/rootfs.img" ] && [ -s "$KVM_CACHE/kernel-release" ]; then
		log "up to date: kernel $(cat "$KVM_CACHE/kernel-release") in $KVM_CACHE"
		return 0
	fi
	local t0=$SECONDS
	mkdir -p "$KVM_CACHE/debs"
	BUILD_WORK=$(mktemp -d "$KVM_CACHE/work.XXXXXX")
	trap build_cleanup EXIT
	trap 'log "build failed (line $LINENO: $BASH_COMMAND); log: $KVM_CACHE/build.log"' ERR
	trap 'exit 130' INT
	trap 'exit 143' TERM
	local root=$BUILD_WORK/root blog=$BUILD_WORK/build.log
	log "debootstrap --variant=minbase $SUITE from $KVM_MIRROR (log: $KVM_CACHE/build.log)"
	if ! debootstrap --variant=minbase --cache-dir="$KVM_CACHE/debs" \
		"$SUITE" "$root" "$KVM_MIRROR" >"$blog" 2>&1; then
		tail -n 30 "$blog" >&2
		cp "$blog" "$KVM_CACHE/build.log"
		die "debootstrap failed"
	fi

	# apt inside: all of bookworm (point releases, security), no daemons
	# started by maintainer scripts, no docs.
	cat >"$root/etc/apt/sources.list" <<EOF
deb $KVM_MIRROR $SUITE main
deb $KVM_MIRROR $SUITE-updates main
deb $KVM_SECURITY_MIRROR $SUITE-security main
EOF
	printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
	chmod 755 "$root/usr/sbin/policy-rc.d"
	cat >"$root/etc/dpkg/dpkg.cfg.d/01-choreo-nodoc" <<'EOF'
path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/*/copyright
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/locale/*
path-include=/usr/share/locale/locale.alias
EOF
	printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' \
		>"$root/etc/apt/apt.conf.d/01-choreo"
	echo choreo-vm >"$root/etc/hostname"
	printf '127.0.0.1\tlocalhost\n127.0.1.1\tchoreo-vm\n::1\tlocalhost ip6-localhost ip6-loopback\n' \
		>"$root/etc/hosts"
	echo '/dev/vda / ext4 rw,relatime 0 1' >"$root/etc/fstab"
	# the host's resolver while building (emptied again before the image)
	cp -L /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || : >"$root/etc/resolv.conf"
	# initramfs-tools: the modules to boot from virtio-blk and mount 9p
	mkdir -p "$root/etc/initramfs-tools/conf.d"
	printf 'MODULES=list\nCOMPRESS=zstd\nRESUME=none\n' >"$root/etc/initramfs-tools/conf.d/choreo-vm"
	mkdir -p "$root/etc/initramfs-tools"
	printf '%s\n' "${INITRD_MODULES[@]}" >"$root/etc/initramfs-tools/modules"

	mount -t proc proc "$root/proc"
	mount -t sysfs sysfs "$root/sys"
	# re-use downloaded packages from earlier builds
	cp -l "$KVM_CACHE"/debs/*.deb "$root/var/cache/apt/archives/" 2>/dev/null || true
	log "apt-get install: ${ROOT_PKGS[*]} ${KVM_EXTRA_PKGS:-}"
	local -a extra=()
	read -r -a extra <<<"${KVM_EXTRA_PKGS:-}"
	{
		chroot_run "$root" apt-get update &&
		chroot_run "$root" apt-get install -y "${ROOT_PKGS[@]}" "${extra[@]}"
	} >>"$blog" 2>&1 || { tail -n 30 "$blog" >&2; cp "$blog" "$KVM_CACHE/build.log"; die "apt-get install failed"; }

	local kpkg=${KVM_KERNEL:-}
	if [ -z "$kpkg" ]; then
		kpkg=$(chroot_run "$root" apt-cache depends linux-image-amd64 |
			awk '$1 == "Depends:" && $2 ~ /^linux-image-6\.1/ { print $2; exit }')
		[ -n "$kpkg" ] || die "cannot resolve linux-image-amd64 to a 6.1 kernel package"
	fi
	log "kernel: $kpkg"
	chroot_run "$root" apt-get install -y "$kpkg" >>"$blog" 2>&1 ||
		{ tail -n 30 "$blog" >&2; cp "$blog" "$KVM_CACHE/build.log"; die "installing $kpkg failed"; }
	cp -ln "$root"/var/cache/apt/archives/*.deb "$KVM_CACHE/debs/" 2>/dev/null || true
	chroot_run "$root" apt-get clean >>"$blog" 2>&1
	# the guest has no network: apt's lists are dead weight (apt-get update
	# brings them back)
	find "$root/var/lib/apt/lists" -maxdepth 1 -type f -delete

	local krel
	krel=$(find "$root/boot" -maxdepth 1 -name 'vmlinuz-*' -printf '%f\n' | sed 's/^vmlinuz-//' | sort -V | tail -n 1)
	if [ -z "$krel" ] || [ ! -s "$root/boot/initrd.img-$krel" ]; then
		die "no kernel/initrd in $root/boot"
	fi
	# modules no test VM needs (graphics, sound, radio, cameras...): about
	# a quarter of the image
	local kdir=$root/lib/modules/$krel/kernel
	rm -rf "$kdir/sound" "$kdir/drivers/gpu" "$kdir/drivers/media" \
		"$kdir/drivers/infiniband" "$kdir/drivers/staging" "$kdir/drivers/iio" \
		"$kdir/drivers/bluetooth" "$kdir/drivers/isdn" "$kdir/drivers/video" \
		"$kdir/drivers/net/wireless" "$kdir/net/bluetooth" "$kdir/net/mac80211" \
		"$kdir/net/wireless"
	# make sure the initramfs has what we listed (the hook ran inside apt)
	chroot_run "$root" update-initramfs -u -k "$krel" >>"$blog" 2>&1 ||
		{ tail -n 20 "$blog" >&2; die "update-initramfs failed"; }
	chroot_run "$root" depmod -a "$krel"
	umount "$root/sys" "$root/proc" 2>/dev/null || umount -l "$root/sys" "$root/proc"

	: >"$root/etc/resolv.conf"
	stage1_init >"$root/sbin/choreo-vm-init"
	chmod 755 "$root/sbin/choreo-vm-init"
	rm -f "$root/usr/sbin/policy-rc.d"   # the image never runs services anyway
	cp "$root/boot/vmlinuz-$krel" "$BUILD_WORK/vmlinuz"
	cp "$root/boot/initrd.img-$krel" "$BUILD_WORK/initrd.img"
	echo "$krel" >"$BUILD_WORK/kernel-release"
	# shellcheck disable=SC2016
	chroot_run "$root" dpkg-query -W -f='${Package} ${Version}\n' >"$BUILD_WORK/packages.txt"

	# ext4 image: the tree plus 1 GiB of room (runs write to a throw-away
	# snapshot overlay, never to this file)
	local mb
	mb=$(du -sm --apparent-size "$root" | cut -f1)
	mb=$((mb + mb / 4 + 1024))
	log "mkfs.ext4 -d: ${mb} MiB image"
	truncate -s "${mb}M" "$BUILD_WORK/rootfs.img"
	mkfs.ext4 -q -F -L choreo-root -d "$root" "$BUILD_WORK/rootfs.img" >>"$blog" 2>&1 ||
		{ tail -n 20 "$blog" >&2; die "mkfs.ext4 failed"; }
	rm -rf --one-file-system "$root"

	local f
	rm -f "$KVM_CACHE/stamp"
	for f in vmlinuz initrd.img rootfs.img kernel-release packages.txt; do
		mv -f "$BUILD_WORK/$f" "$KVM_CACHE/$f"
	done
	cp "$blog" "$KVM_CACHE/build.log"
	echo "$stamp" >"$KVM_CACHE/stamp"
	log "built kernel $krel in $((SECONDS - t0)) s: $(du -sh --apparent-size "$KVM_CACHE" | cut -f1) apparent, $(du -sh "$KVM_CACHE" | cut -f1) on disk in $KVM_CACHE"
}

# ---------------------------------------------------------------------------
# run

# show_console: the serial console without SeaBIOS's terminal escapes
show_console() { sed -u -E 's/\x1b(\[[0-9;?]*[A-Za-z]|c)//g; s/^/vm.sh: | /'; }

RUN_TMP=""
QEMU_PID=""
run_cleanup() {
	local rc=$?
	if [ -n "$QEMU_PID" ] && kill -0 "$QEMU_PID" 2>/dev/null; then
		kill -TERM "$QEMU_PID" 2>/dev/null || true
		sleep 1
		kill -KILL "$QEMU_PID" 2>/dev/null || true
		wait "$QEMU_PID" 2>/dev/null || true
	fi
	if [ -n "$RUN_TMP" ] && [ -d "$RUN_TMP" ]; then
		rm -rf "$RUN_TMP"
	fi
	return "$rc"
}

cmd_run() {
	local mem=${KVM_MEM:-2048} smp=${KVM_SMP:-2} timeout=${KVM_TIMEOUT:-1800}
	while [ $# -gt 0 ]; do
		case $1 in
		--mem) mem=${2:?}; shift 2 ;;
		--mem=*) mem=${1#*=}; shift ;;
		--smp) smp=${2:?}; shift 2 ;;
		--smp=*) smp=${1#*=}; shift ;;
		--timeout) timeout=${2:?}; shift 2 ;;
		--timeout=*) timeout=${1#*=}; shift ;;
		--) shift; break ;;
		*) usage ;;
		esac
	done
	[ $# -gt 0 ] || usage
	[[ $mem =~ ^[0-9]+$ && $smp =~ ^[0-9]+$ && $timeout =~ ^[0-9]+$ ]] ||
		die "--mem, --smp and --timeout take whole numbers"
	need_root
	need_cmd qemu-system-x86_64
	local f
	for f in vmlinuz initrd.img rootfs.img; do
		[ -s "$KVM_CACHE/$f" ] || die "$KVM_CACHE/$f is missing: run '$0 build' first"
	done
	local share
	share=$(cd "$KVM_SHARE" && pwd -P) || die "KVM_SHARE=$KVM_SHARE is not a directory"
	case $share in
	*,*) die "the share path must not contain a comma: $share" ;;
	esac

	RUN_TMP=$(mktemp -d "${TMPDIR:-/tmp}/choreo-vm.XXXXXX")
	trap run_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	local ctl=$RUN_TMP/ctl
	mkdir -p "$ctl"
	chmod 755 "$ctl"
	stage2_init >"$ctl/stage2"
	printf '%s\n' "$share" >"$ctl/share"
	# the command, quoted for bash
	{
		printf '# generated by tests/kernels/vm.sh\nexec'
		printf ' %q' "$@"
		printf '\n'
	} >"$ctl/cmd"

	local append="console=ttyS0 quiet loglevel=4 root=/dev/vda rootfstype=ext4 rw"
	append+=" init=/sbin/choreo-vm-init panic=1 fsck.mode=skip noresume"
	append+=" mitigations=off net.ifnames=0 tsc=reliable"
	local console=$RUN_TMP/console.log
	: >"$console"
	# shellcheck disable=SC2054
	local -a qemu=(
		qemu-system-x86_64
		-accel tcg,thread=multi -cpu max -smp "$smp" -m "$mem"
		-nodefaults -no-user-config -nographic -monitor none -no-reboot
		-kernel "$KVM_CACHE/vmlinuz" -initrd "$KVM_CACHE/initrd.img"
		-append "$append"
		-drive "file=$KVM_CACHE/rootfs.img,format=raw,if=virtio,snapshot=on,cache=unsafe"
		-virtfs "local,path=$ctl,mount_tag=vmctl,security_model=none,id=vmctl"
		-virtfs "local,path=$share,mount_tag=share,security_model=none,id=share"
		-device virtio-rng-pci
		-serial "file:$console"
		-chardev stdio,id=out,signal=off
		-serial chardev:out
	)
	local t0=$SECONDS deadline=$((SECONDS + timeout)) timed_out=0 tailpid=""
	"${qemu[@]}" </dev/null 2>"$RUN_TMP/qemu.err" &
	QEMU_PID=$!
	if [ "${KVM_VERBOSE:-0}" = 1 ]; then
		# ends by itself once qemu has exited
		tail -n +1 -f --pid="$QEMU_PID" "$console" | show_console >&2 &
		tailpid=$!
	fi
	while kill -0 "$QEMU_PID" 2>/dev/null; do
		if [ "$SECONDS" -ge "$deadline" ]; then
			timed_out=1
			kill -TERM "$QEMU_PID" 2>/dev/null || true
			sleep 1
			kill -KILL "$QEMU_PID" 2>/dev/null || true
			break
		fi
		sleep 0.2
	done
	local qrc=0
	wait "$QEMU_PID" 2>/dev/null || qrc=$?
	QEMU_PID=""
	[ -z "$tailpid" ] || wait "$tailpid" 2>/dev/null || true
	if [ "$timed_out" = 1 ]; then
		log "timeout after ${timeout} s: qemu killed; last console lines:"
		tail -n 20 "$console" | show_console >&2
		exit 124
	fi
	local status=""
	if [ -s "$ctl/status" ]; then
		status=$(tr -dc '0-9' <"$ctl/status")
	else
		status=$(sed -n 's/.*CHOREO_VM_STATUS=\([0-9][0-9]*\).*/\1/p' "$console" | tail -n 1)
	fi
	if [ -z "$status" ]; then
		log "the guest reported no exit status (qemu exit $qrc, $((SECONDS - t0)) s); qemu stderr and console:"
		sed 's/^/vm.sh: qemu: /' "$RUN_TMP/qemu.err" >&2
		tail -n 60 "$console" | show_console >&2
		exit 125
	fi
	[ "${KVM_VERBOSE:-0}" = 1 ] && log "guest exit status $status after $((SECONDS - t0)) s"
	exit "$status"
}

cmd_info() {
	[ -s "$KVM_CACHE/kernel-release" ] || die "not built: $0 build"
	echo "kernel: $(cat "$KVM_CACHE/kernel-release")"
	ls -l "$KVM_CACHE"
	du -sh "$KVM_CACHE"
}

case ${1:-} in
build) shift; [ $# -eq 0 ] || usage; cmd_build ;;
run) shift; cmd_run "$@" ;;
info) cmd_info ;;
*) usage ;;
esac
