#!/usr/bin/env bash
# Start a single-node SLURM on this machine for the cluster tests (tests/cluster/).
#
#   sudo tests/cluster/start_slurm.sh          # configure and start munged, slurmctld, slurmd
#   sudo tests/cluster/stop_slurm.sh           # stop them again (by PID)
#
# Needs root and the Debian packages slurmctld, slurmd, slurm-client and munge
# (`apt-get install -y --no-install-recommends slurmctld slurmd slurm-client munge`).
# No systemd: the daemons are started directly and write PID files under /run.
#
# The cluster it starts mirrors profiles/slurm: two partitions, `cpu` (the default) and `gpu`, both
# on this one node, which declares two fake GPUs (empty files as devices), so `gpu=1` jobs are
# scheduled and GPU counts are enforced. Memory is enforced too (jobacct_gather/linux with
# OverMemoryKill): a job that uses more than its --mem is killed with state OUT_OF_MEMORY, which
# the memory-retry test needs. There is no accounting database (sacct does not work); finished
# jobs are written to the job completion log, JobCompLoc below, which the tests read.
#
# Re-running it while SLURM is up does nothing. It rewrites /etc/slurm/slurm.conf and gres.conf.
set -euo pipefail

ETC=/etc/slurm
STATE=/var/lib/slurm
LOGS=/var/log/slurm
FAKE_GPUS=$STATE/fake_gpus

say() { echo "start_slurm: $*"; }
die() { echo "start_slurm: error: $*" >&2; exit 1; }

alive() {  # alive PIDFILE NAME: the PID in PIDFILE is a running process called NAME
    local pid
    [[ -s $1 ]] || return 1
    pid=$(cat "$1")
    [[ -r /proc/$pid/comm ]] && [[ $(cat "/proc/$pid/comm") == "$2"* ]]
}

[[ $(id -u) -eq 0 ]] || die "must run as root (it writes /etc/slurm and starts daemons)"
for binary in munged slurmctld slurmd; do
    [[ -x /usr/sbin/$binary ]] || die "/usr/sbin/$binary missing: apt-get install slurmctld slurmd slurm-client munge"
done
command -v sinfo >/dev/null || die "sinfo missing: apt-get install slurm-client"

if alive /run/slurmctld.pid slurmctld && alive /run/slurmd.pid slurmd; then
    say "already running (slurmctld $(cat /run/slurmctld.pid), slurmd $(cat /run/slurmd.pid))"
    exit 0
fi

HOST=$(hostname -s)
CPUS=$(nproc)
# Leave 1 GB to the system; slurmd marks the node invalid if it has less memory than declared.
MEM_MB=$(( $(free -m | awk '/^Mem:/ {print $2}') - 1024 ))

# --- munge -------------------------------------------------------------------------------------
if ! alive /run/munge/munged.pid munged; then
    [[ -s /etc/munge/munge.key ]] || mungekey --create --keyfile=/etc/munge/munge.key
    chown munge:munge /etc/munge/munge.key
    chmod 0400 /etc/munge/munge.key
    mkdir -p /run/munge /var/log/munge /var/lib/munge
    chown munge:munge /run/munge /var/log/munge /var/lib/munge
    chmod 0755 /run/munge
    runuser -u munge -- /usr/sbin/munged
fi
for _ in $(seq 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.2; done
munge -n | unmunge >/dev/null || die "munge does not work (see /var/log/munge/munged.log)"

# --- configuration -----------------------------------------------------------------------------
mkdir -p "$ETC" "$STATE/slurmctld" "$STATE/slurmd" "$LOGS" "$FAKE_GPUS"
touch "$FAKE_GPUS/gpu0" "$FAKE_GPUS/gpu1"
chown -R slurm:slurm "$STATE" "$LOGS"

cat > "$ETC/slurm.conf.new" <<EOF
# Written by tests/cluster/start_slurm.sh: a single-node test cluster. Not for production.
ClusterName=ci
SlurmctldHost=$HOST
AuthType=auth/munge
CredType=cred/munge
SlurmUser=slurm
# No cgroups needed: processes are tracked through /proc.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmdSpoolDir=$STATE/slurmd
StateSaveLocation=$STATE/slurmctld
SlurmctldLogFile=$LOGS/slurmctld.log
SlurmdLogFile=$LOGS/slurmd.log
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# No accounting database: sacct does not work, Snakemake polls with squeue
# (slurm-status-command: squeue in the profile), which needs MinJobAge >= 120 s. Finished jobs
# stay visible to squeue and scontrol show job for an hour: the tests inspect them.
AccountingStorageType=accounting_storage/none
MinJobAge=3600
# Memory is enforced by polling /proc every second: a job over its --mem is killed (OUT_OF_MEMORY).
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=task=1
JobAcctGatherParams=OverMemoryKill
# Every finished job is appended to this file (id, name, state, partition, TRES): the tests read it.
JobCompType=jobcomp/filetxt
JobCompLoc=$LOGS/jobcomp.log
ReturnToService=2
DefMemPerCPU=1024
GresTypes=gpu
NodeName=$HOST CPUs=$CPUS RealMemory=$MEM_MB Gres=gpu:2 State=UNKNOWN
PartitionName=cpu Nodes=ALL Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=ALL MaxTime=INFINITE State=UP
EOF

cat > "$ETC/gres.conf.new" <<EOF
# Two fake GPUs (empty files): enough for SLURM to schedule and count gpu=N jobs.
NodeName=$HOST Name=gpu File=$FAKE_GPUS/gpu0
NodeName=$HOST Name=gpu File=$FAKE_GPUS/gpu1
EOF
# Replace both at once: every SLURM command (and the Snakemake plugin) reads slurm.conf.
mv "$ETC/gres.conf.new" "$ETC/gres.conf"
mv "$ETC/slurm.conf.new" "$ETC/slurm.conf"

# --- daemons -----------------------------------------------------------------------------------
alive /run/slurmctld.pid slurmctld || /usr/sbin/slurmctld
alive /run/slurmd.pid slurmd || /usr/sbin/slurmd
# Both daemonise: give them a moment to write their PID files.
for _ in $(seq 50); do
    alive /run/slurmctld.pid slurmctld && alive /run/slurmd.pid slurmd && break
    sleep 0.2
done

# Wait (at most 30 s) until the node is idle; fail fast when a daemon died (its log says why).
state="" deadline=$((SECONDS + 30))
while (( SECONDS < deadline )); do
    alive /run/slurmctld.pid slurmctld || { tail -n 5 "$LOGS/slurmctld.log" >&2; die "slurmctld exited"; }
    alive /run/slurmd.pid slurmd || { tail -n 5 "$LOGS/slurmd.log" >&2; die "slurmd exited"; }
    state=$(timeout 5 sinfo -h -o %T 2>/dev/null | sort -u | tr '\n' ' ' || true)
    [[ $state == idle* || $state == mixed* || $state == allocated* ]] && break
    sleep 0.5
done
if [[ $state != idle* && $state != mixed* && $state != allocated* ]]; then
    echo "--- $LOGS/slurmctld.log" >&2; tail -n 20 "$LOGS/slurmctld.log" >&2 || true
    echo "--- $LOGS/slurmd.log" >&2; tail -n 20 "$LOGS/slurmd.log" >&2 || true
    die "node not ready after 30 s (sinfo state: '${state:-none}')"
fi
say "up: node $HOST, $CPUS CPUs, $MEM_MB MB, 2 fake GPUs, partitions cpu (default) and gpu;" \
    "slurmctld $(cat /run/slurmctld.pid), slurmd $(cat /run/slurmd.pid), munged $(cat /run/munge/munged.pid)"
