#!/bin/sh
# wrapdocker.sh: entrypoint of LayerTool's Docker-in-Docker image (Dockerfile.dind).
#
# Prepares the container for a nested Docker daemon, starts dockerd, waits until it answers, then
#   - runs the given command (for example `layertool build ...`) and exits with its status, or
#   - with no command, or when the first argument starts with `-` (extra dockerd flags), keeps the
#     daemon in the foreground until it is stopped.
# SIGTERM and SIGINT are forwarded (to the command, then to dockerd); the script waits for dockerd to
# shut down and exits 0 when it stopped cleanly.
#
# Settings (environment):
#   DIND_HOSTS           space-separated daemon addresses (default unix:///var/run/docker.sock).
#                        tcp:// addresses need TLS: DIND_TLS_CERTDIR with ca.pem, cert.pem, key.pem.
#   DIND_TLS_CERTDIR     directory of the server's TLS material (see above)
#   DIND_SOCKET_GROUP    group (name or gid) owning the unix sockets
#   DIND_DATA_ROOT       daemon storage (default /var/lib/docker; must be a volume, not overlayfs)
#   DIND_STORAGE_DRIVER  force a storage driver (for example vfs, which works on any filesystem)
#   DIND_BRIDGE          1 = let dockerd create its default bridge and iptables rules; default off:
#                        no bridge, no iptables, containers use --network host or none
#   DIND_CGROUP_PARENT   cgroup parent of the nested containers; default on cgroup v1 with the host's
#                        cgroup namespace: our own cgroup + /dind, so the nested containers count
#                        against this container's limits and nothing lands in the host's /docker group
#   DIND_DOCKERD_ARGS    extra dockerd flags (split on spaces)
#   DIND_WAIT            seconds to wait for the daemon to answer (default 60)
#   DIND_LOG             daemon log file (default /var/log/dockerd.log)
set -eu

say() { printf 'wrapdocker: %s\n' "$*" >&2; }
die() { printf 'wrapdocker: error: %s\n' "$*" >&2; exit 1; }

hosts=${DIND_HOSTS:-unix:///var/run/docker.sock}
data_root=${DIND_DATA_ROOT:-/var/lib/docker}
driver=${DIND_STORAGE_DRIVER:-}
wait_seconds=${DIND_WAIT:-60}
log=${DIND_LOG:-/var/log/dockerd.log}

case "$wait_seconds" in '' | *[!0-9]*) die "DIND_WAIT must be a number of seconds, not '$wait_seconds'" ;; esac

is_mountpoint() { mountpoint -q "$1" 2>/dev/null; }

# --- container preparation ------------------------------------------------------------------------

prepare_securityfs() {
	# AppArmor-aware runc checks /sys/kernel/security; docker does not mount it in containers.
	if [ -d /sys/kernel/security ] && ! is_mountpoint /sys/kernel/security; then
		mount -t securityfs none /sys/kernel/security 2>/dev/null ||
			say "could not mount securityfs on /sys/kernel/security (continuing without it)"
	fi
}

prepare_tmp() {
	if ! is_mountpoint /tmp; then
		mount -t tmpfs -o mode=1777 none /tmp || die "could not mount a tmpfs on /tmp (is the container privileged?)"
	fi
}

prepare_cgroup_v2() {
	# Only inside a private cgroup namespace (we sit at its root, "0::/"): with the host's namespace
	# the processes listed at the root would be the host's.
	if [ "$(cat /proc/self/cgroup)" != "0::/" ]; then
		say "cgroup v2 without a private cgroup namespace: leaving the hierarchy as it is"
		return 0
	fi
	# Without --privileged docker mounts the hierarchy read-only.
	if ! [ -w /sys/fs/cgroup/cgroup.subtree_control ]; then
		mount -o remount,rw /sys/fs/cgroup 2>/dev/null || say "/sys/fs/cgroup is read-only and could not be remounted read-write"
	fi
	# A cgroup with processes cannot delegate controllers ("no internal processes"), so move every
	# process of the root group (us included) into a leaf first.
	mkdir -p /sys/fs/cgroup/init
	attempt=0
	while :; do
		while read -r pid; do
			echo "$pid" >/sys/fs/cgroup/init/cgroup.procs 2>/dev/null || :
		done </sys/fs/cgroup/cgroup.procs
		controllers=$(sed -e 's/ / +/g' -e 's/^/+/' </sys/fs/cgroup/cgroup.controllers)
		if [ "$controllers" = "+" ] || echo "$controllers" >/sys/fs/cgroup/cgroup.subtree_control 2>/dev/null; then
			return 0
		fi
		# A process may have been born in the root group meanwhile: move it and try again.
		attempt=$((attempt + 1))
		[ "$attempt" -lt 10 ] || die "could not enable the cgroup v2 controllers ($controllers) in /sys/fs/cgroup/cgroup.subtree_control"
		sleep 0.1 2>/dev/null || sleep 1
	done
}

prepare_cgroup_v1() {
	# Normally mounted by docker (--privileged, or -v /sys/fs/cgroup:/sys/fs/cgroup); mount the
	# hierarchies ourselves when they are missing.
	if ! is_mountpoint /sys/fs/cgroup; then
		mount -t tmpfs -o uid=0,gid=0,mode=0755 cgroup /sys/fs/cgroup || die "could not mount a tmpfs on /sys/fs/cgroup"
	fi
	# /proc/cgroups: subsys_name hierarchy num_cgroups enabled
	while read -r name _ _ enabled; do
		case "$name" in '#'* | '') continue ;; esac
		[ "$enabled" = 1 ] || continue
		[ -d "/sys/fs/cgroup/$name" ] && continue
		mkdir -p "/sys/fs/cgroup/$name"
		mount -n -t cgroup -o "$name" cgroup "/sys/fs/cgroup/$name" 2>/dev/null || rmdir "/sys/fs/cgroup/$name" 2>/dev/null || :
	done </proc/cgroups
}

cgroup_parent=${DIND_CGROUP_PARENT:-}

prepare_cgroups() {
	if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
		prepare_cgroup_v2
	else
		prepare_cgroup_v1
		if [ -z "$cgroup_parent" ]; then
			own=$(sed -n 's/^[0-9]*:memory:\(.*\)$/\1/p' /proc/self/cgroup)
			case "$own" in '' | /) ;; *) cgroup_parent=$own/dind ;; esac
		fi
	fi
}

prepare_mounts() {
	# Mounts made by the daemon (container rootfs, volumes) must propagate to its children.
	mount --make-rshared / 2>/dev/null || mount -o remount,rshared / 2>/dev/null ||
		say "could not make / rshared (continuing; volume propagation may not work)"
}

remove_stale_pids() {
	# A container restarted after a crash keeps the previous daemon's pid files; dockerd and containerd
	# refuse to start while they exist.
	for dir in /var/run /run /var/run/docker /run/docker /var/run/docker/containerd /run/docker/containerd; do
		[ -d "$dir" ] || continue
		for f in "$dir"/docker*.pid "$dir"/containerd.pid; do
			[ -e "$f" ] && rm -f "$f"
		done
	done
	return 0
}

fs_type() { stat -f -c %T "$1" 2>/dev/null || echo unknown; }

check_storage() {
	mkdir -p "$data_root"
	fstype=$(fs_type "$data_root")
	case "$fstype" in
	overlay | overlayfs)
		if [ -z "$driver" ] || [ "$driver" = overlay2 ] || [ "$driver" = overlay ] || [ "$driver" = fuse-overlayfs ]; then
			die "$data_root is on overlayfs (the container's own filesystem), and overlay on overlay does not work.
  Mount a volume there:          docker run -v NAME:$data_root ...
  or choose another driver:      -e DIND_STORAGE_DRIVER=vfs (slow, but works on any filesystem)"
		fi
		;;
	esac
}

tls_args() {
	dir=${DIND_TLS_CERTDIR:-}
	[ -n "$dir" ] || die "refusing to listen on $1 without TLS: set DIND_TLS_CERTDIR to a directory with ca.pem, cert.pem and key.pem (or use a unix socket)"
	for f in ca.pem cert.pem key.pem; do
		[ -r "$dir/$f" ] || die "DIND_TLS_CERTDIR=$dir has no readable $f"
	done
	echo "--tlsverify --tlscacert=$dir/ca.pem --tlscert=$dir/cert.pem --tlskey=$dir/key.pem"
}

# --- dockerd command line --------------------------------------------------------------------------

set_dockerd_args() {
	first_host=""
	need_tls=""
	host_args=""
	for h in $hosts; do
		case "$h" in
		unix://*) mkdir -p "$(dirname "${h#unix://}")" ;;
		tcp://*) need_tls=$h ;;
		fd://*) ;;
		*) die "unsupported address in DIND_HOSTS: $h (use unix:// or tcp:// with TLS)" ;;
		esac
		[ -n "$first_host" ] || first_host=$h
		host_args="$host_args --host=$h"
	done
	[ -n "$first_host" ] || die "DIND_HOSTS is empty"
	# Our readiness probe (and the command we run) use a unix socket: it needs no client certificates.
	# Listening only on TCP still gets the default socket inside the container.
	case " $hosts" in
	*" unix://"*) for h in $hosts; do case "$h" in unix://*) first_host=$h; break ;; esac; done ;;
	*)
		first_host=unix:///var/run/docker.sock
		host_args="$host_args --host=$first_host"
		;;
	esac

	extra="--data-root=$data_root"
	[ -z "$driver" ] || extra="$extra --storage-driver=$driver"
	[ -z "${DIND_SOCKET_GROUP:-}" ] || extra="$extra --group=$DIND_SOCKET_GROUP"
	case "$cgroup_parent ${DIND_DOCKERD_ARGS:-}" in
	none* | ' '* | *--cgroup-parent*) ;;
	*) extra="$extra --cgroup-parent=$cgroup_parent" ;;
	esac
	if [ "${DIND_BRIDGE:-0}" != 1 ]; then
		extra="$extra --bridge=none --iptables=false --ip-forward=false --ip-masq=false"
	fi
	[ -z "$need_tls" ] || extra="$extra $(tls_args "$need_tls")"
	# Word splitting is wanted here: every variable holds space-separated flags without spaces inside.
	# shellcheck disable=SC2086
	dockerd_args="$host_args $extra ${DIND_DOCKERD_ARGS:-}"
}

# --- daemon lifecycle ------------------------------------------------------------------------------

dockerd_pid=""
cmd_pid=""
stopping=""

daemon_answers() {
	DOCKER_HOST=$first_host timeout 5 docker version --format '{{.Server.Version}}' >/dev/null 2>&1
}

print_log() {
	say "---- dockerd log ($log) ----"
	tail -n 60 "$log" >&2 2>/dev/null || :
	say "---- end of dockerd log ----"
}

start_dockerd() { # "$@" = extra dockerd flags
	mkdir -p "$(dirname "$log")"
	: >"$log"
	# shellcheck disable=SC2086 # flags are space-separated words (see set_dockerd_args)
	dockerd $dockerd_args "$@" >>"$log" 2>&1 </dev/null &
	dockerd_pid=$!
	waited=0
	# The budget is checked before each probe: a probe itself may take up to 5 s, and a daemon that answers
	# during it must not count as answering within a budget already spent (DIND_WAIT=0 always gives up).
	while :; do
		if ! kill -0 "$dockerd_pid" 2>/dev/null; then
			status=0
			wait "$dockerd_pid" || status=$?
			print_log
			die "dockerd exited with status $status while starting (log above)"
		fi
		if [ "$waited" -ge "$wait_seconds" ]; then
			print_log
			kill -TERM "$dockerd_pid" 2>/dev/null || :
			die "dockerd did not answer within ${wait_seconds}s (log above)"
		fi
		daemon_answers && break
		sleep 1
		waited=$((waited + 1))
	done
	say "dockerd $(DOCKER_HOST=$first_host docker version --format '{{.Server.Version}}' 2>/dev/null) is ready on $hosts (after ${waited}s)"
}

# shellcheck disable=SC2317 # called from the traps in main
on_signal() { # $1 = signal name
	stopping=$1
	say "received SIG$1: stopping"
	# TERM even for INT: a background job of a non-interactive shell ignores SIGINT.
	if [ -n "$cmd_pid" ]; then kill -TERM "$cmd_pid" 2>/dev/null || :; fi
	if [ -n "$dockerd_pid" ]; then kill -TERM "$dockerd_pid" 2>/dev/null || :; fi
}

wait_for() { # $1 = pid; sets $status. `wait` returns early when a trapped signal arrives: repeat.
	status=0
	wait "$1" || status=$?
	while kill -0 "$1" 2>/dev/null; do
		status=0
		wait "$1" || status=$?
	done
}

stop_dockerd() {
	[ -n "$dockerd_pid" ] || return 0
	kill -TERM "$dockerd_pid" 2>/dev/null || :
	wait_for "$dockerd_pid"
	dockerd_status=$status
	dockerd_pid=""
	if [ "$dockerd_status" = 0 ]; then say "dockerd stopped cleanly"; else say "dockerd exited with status $dockerd_status"; print_log; fi
}

main() {
	foreground=""
	if [ "$#" -eq 0 ]; then foreground=1; fi
	case "${1:-}" in -*) foreground=1 ;; esac
	flags=""
	[ -z "$foreground" ] || flags=1

	trap 'on_signal TERM' TERM
	trap 'on_signal INT' INT

	prepare_securityfs
	prepare_tmp
	prepare_cgroups
	prepare_mounts
	remove_stale_pids
	check_storage
	set_dockerd_args

	if [ -n "$flags" ]; then start_dockerd "$@"; else start_dockerd; fi
	[ -z "$stopping" ] || { stop_dockerd; exit "$dockerd_status"; }

	if [ -n "$foreground" ]; then
		# The daemon's log goes to our stderr (docker logs) from now on.
		tail -n +1 -f "$log" >&2 &
		tail_pid=$!
		wait_for "$dockerd_pid"
		dockerd_status=$status
		dockerd_pid=""
		kill "$tail_pid" 2>/dev/null || :
		if [ -n "$stopping" ] && [ "$dockerd_status" = 0 ]; then say "dockerd stopped cleanly"; exit 0; fi
		[ -n "$stopping" ] || say "dockerd exited on its own with status $dockerd_status"
		exit "$dockerd_status"
	fi

	export DOCKER_HOST="$first_host"
	# A background job's stdin would be /dev/null: hand it ours explicitly.
	exec 3<&0
	"$@" <&3 3<&- &
	exec 3<&-
	cmd_pid=$!
	wait_for "$cmd_pid"
	cmd_status=$status
	cmd_pid=""
	stop_dockerd
	exit "$cmd_status"
}

main "$@"
