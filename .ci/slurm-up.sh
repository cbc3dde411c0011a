#!/usr/bin/env bash
# Bring up a real single-node SLURM cluster on this machine (Debian 12 / Ubuntu, run as root).
#
#   sudo bash .ci/slurm-up.sh
#
# Installs munge, slurmctld, slurmd and slurm-client with apt-get, writes a munge key and a
# minimal slurm.conf for this host (one partition "debug", no accounting database), starts the
# daemons without systemd, and waits until the node is idle. Running it again when the cluster is
# already up does nothing. It is what tests/test_slurm.py (pytest -m slurm) runs against.
#
# Environment overrides: SLURM_PARTITION (debug), SLURM_UP_TIMEOUT (seconds to wait, 90),
# SLURM_MEM_RESERVE_MB (memory kept back from SLURM, default max(512, 5% of RAM)).
set -euo pipefail

PARTITION="${SLURM_PARTITION:-debug}"
TIMEOUT="${SLURM_UP_TIMEOUT:-90}"
CONF_DIR=/etc/slurm
CONF="$CONF_DIR/slurm.conf"
MARKER="# written by .ci/slurm-up.sh"
LOG_DIR=/var/log/slurm
STATE_DIR=/var/lib/slurm/slurmctld
SPOOL_DIR=/var/spool/slurmd
HOST="$(hostname -s)"

say() { echo "slurm-up: $*"; }
die() {
    echo "slurm-up: ERROR: $*" >&2
    for f in "$LOG_DIR/slurmctld.log" "$LOG_DIR/slurmd.log" /var/log/munge/munged.log; do
        if [ -s "$f" ]; then
            echo "----- last lines of $f -----" >&2
            tail -n 25 "$f" >&2
        fi
    done
    exit 1
}

node_state() {  # state of this host's node as sinfo sees it (empty when slurmctld does not answer)
    sinfo -h -N -n "$HOST" -o '%T' 2>/dev/null | head -n 1 | tr -d '*~#!%$@^-' || true
}

summary() {
    local line
    line="$(sinfo -h -N -n "$HOST" -o '%N partition=%P state=%T cpus=%c mem=%mMB timelimit=%l')"
    say "SLURM $(sinfo -V | awk '{print $2}') up: $line"
}

[ "$(id -u)" -eq 0 ] || { echo "slurm-up: must run as root" >&2; exit 1; }

# --- already running? -------------------------------------------------------------------------
# (slurmctld reports a node idle for minutes after its slurmd died, so look for slurmd too)
slurmd_alive() { ps -C slurmd -o stat= 2>/dev/null | grep -qv '^Z'; }
if command -v sinfo >/dev/null 2>&1 && slurmd_alive; then
    case "$(node_state)" in
        idle|mixed|allocated) summary; exit 0 ;;
    esac
fi

# --- packages ---------------------------------------------------------------------------------
need=()
for cmd in munged slurmctld slurmd sbatch; do
    command -v "$cmd" >/dev/null 2>&1 || need+=("$cmd")
done
if [ "${#need[@]}" -gt 0 ]; then
    say "installing munge slurmctld slurmd slurm-client (missing: ${need[*]})"
    export DEBIAN_FRONTEND=noninteractive
    # Keep the packages' init scripts from starting daemons with their default (empty) config.
    added_policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        added_policy=1
    fi
    apt_log="$(mktemp)"
    apt_ok=1
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends \
        munge slurmctld slurmd slurm-client; } >"$apt_log" 2>&1 || apt_ok=0
    if [ "$added_policy" -eq 1 ]; then rm -f /usr/sbin/policy-rc.d; fi
    if [ "$apt_ok" -eq 0 ]; then
        tail -n 30 "$apt_log" >&2
        die "apt-get failed (output above)"
    fi
    rm -f "$apt_log"
fi

id munge >/dev/null 2>&1 || die "user 'munge' missing after installing munge"
SLURM_USER=slurm
id "$SLURM_USER" >/dev/null 2>&1 || SLURM_USER=root

# --- munge ------------------------------------------------------------------------------------
install -d -o munge -g munge -m 0700 /etc/munge /var/lib/munge /var/log/munge
install -d -o munge -g munge -m 0755 /run/munge
if [ ! -s /etc/munge/munge.key ]; then
    say "writing /etc/munge/munge.key"
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
fi
chown munge:munge /etc/munge/munge.key
chmod 0400 /etc/munge/munge.key
if ! munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; then
    say "starting munged"
    rm -f /run/munge/munge.socket.2 /run/munge/munge.socket.2.lock
    runuser -u munge -- /usr/sbin/munged || die "munged failed to start"
    for _ in $(seq 20); do
        munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1 && break
        sleep 0.5
    done
    munge -n </dev/null | unmunge >/dev/null 2>&1 || die "munge credentials do not round-trip"
fi

# --- slurm.conf -------------------------------------------------------------------------------
if [ -e "$CONF" ] && ! grep -qF "$MARKER" "$CONF"; then
    die "$CONF exists and was not written by this script; refusing to overwrite it"
fi
cpus="$(nproc --all)"
mem_total_mb=$(( $(awk '/^MemTotal:/ {print $2}' /proc/meminfo) / 1024 ))
reserve_mb="${SLURM_MEM_RESERVE_MB:-$(( mem_total_mb / 20 > 512 ? mem_total_mb / 20 : 512 ))}"
real_mem_mb=$(( mem_total_mb - reserve_mb ))
install -d -m 0755 "$CONF_DIR"
install -d -o "$SLURM_USER" -m 0755 "$LOG_DIR" "$STATE_DIR" /run/slurm
install -d -m 0755 "$SPOOL_DIR"
tmp="$(mktemp)"
cat >"$tmp" <<EOF
$MARKER: single-node cluster for testing the workflow's SLURM profile.
ClusterName=local
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=$SLURM_USER
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$STATE_DIR
SlurmdSpoolDir=$SPOOL_DIR
SlurmctldPidFile=/run/slurm/slurmctld.pid
SlurmdPidFile=/run/slurm/slurmd.pid
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SwitchType=switch/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# No accounting database: sacct does not work, query job states with squeue instead. Finished jobs
# stay visible to squeue for MinJobAge seconds (the executor plugin wants >= 3x its first-check delay).
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MinJobAge=600
ReturnToService=2
# Trust the node line below even where the detected hardware differs (containers, VMs).
SlurmdParameters=config_overrides
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$real_mem_mb State=UNKNOWN
PartitionName=$PARTITION Nodes=$HOST Default=YES MaxTime=7-00:00:00 State=UP
EOF
if ! cmp -s "$tmp" "$CONF"; then
    install -m 0644 "$tmp" "$CONF"
    say "wrote $CONF (node $HOST: CPUs=$cpus RealMemory=${real_mem_mb}MB, partition $PARTITION)"
    conf_changed=1
else
    conf_changed=0
fi
rm -f "$tmp"

# --- daemons ----------------------------------------------------------------------------------
running() {  # is the daemon of this pid file alive (not a zombie)?
    [ -s "$1" ] || return 1
    case "$(ps -o stat= -p "$(cat "$1")" 2>/dev/null)" in ''|Z*) return 1 ;; esac
}
if [ "$conf_changed" -eq 1 ] && running /run/slurm/slurmctld.pid; then
    say "configuration changed: restarting slurmctld and slurmd"
    kill "$(cat /run/slurm/slurmd.pid 2>/dev/null)" 2>/dev/null || true
    kill "$(cat /run/slurm/slurmctld.pid)" 2>/dev/null || true
    sleep 2
fi
if ! running /run/slurm/slurmctld.pid; then
    say "starting slurmctld"
    slurmctld || die "slurmctld failed to start"
fi
for _ in $(seq 20); do scontrol ping >/dev/null 2>&1 && break; sleep 0.5; done
scontrol ping 2>/dev/null | grep -q UP || die "slurmctld does not answer 'scontrol ping'"
if ! running /run/slurm/slurmd.pid; then
    say "starting slurmd"
    slurmd || die "slurmd failed to start"
fi

# --- wait for the node ------------------------------------------------------------------------
deadline=$(( SECONDS + TIMEOUT ))
state=""
while [ "$SECONDS" -lt "$deadline" ]; do
    state="$(node_state)"
    case "$state" in
        idle|mixed|allocated) summary; exit 0 ;;
        drained|draining|down)
            # e.g. left down by an earlier run: the config is ours, so put it back into service
            scontrol update NodeName="$HOST" State=RESUME >/dev/null 2>&1 || true ;;
    esac
    sleep 1
done
die "node $HOST not idle after ${TIMEOUT}s (state: '${state:-no answer}'; sinfo -R: $(sinfo -h -R 2>&1 | head -n 3))"
