#!/usr/bin/env bash
# Stop the single-node SLURM started by tests/cluster/start_slurm.sh: slurmd, slurmctld, munged,
# each by the PID in its PID file (never by name), after checking that the PID is that daemon.
# Then its slurm.conf is moved aside: with a slurm.conf but no controller, every SLURM command (and
# so every `snakemake` call, when the SLURM plugin is installed) waits 9 s for a reply.
# Safe to run when nothing is running.
set -uo pipefail

stop() {  # stop PIDFILE NAME
    local pidfile=$1 name=$2 pid
    [[ -s $pidfile ]] || { echo "stop_slurm: $name: no PID file"; return 0; }
    pid=$(cat "$pidfile")
    if [[ ! -r /proc/$pid/comm || $(cat "/proc/$pid/comm") != "$name"* ]]; then
        echo "stop_slurm: $name: PID $pid is not running"
        rm -f "$pidfile"
        return 0
    fi
    kill -TERM "$pid"
    for _ in $(seq 50); do
        [[ -d /proc/$pid ]] || break
        sleep 0.2
    done
    if [[ -d /proc/$pid ]]; then
        echo "stop_slurm: $name ($pid) still running after 10 s, sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
    echo "stop_slurm: stopped $name ($pid)"
}

stop /run/slurmd.pid slurmd
stop /run/slurmctld.pid slurmctld
stop /run/munge/munged.pid munged

conf=/etc/slurm/slurm.conf
if [[ -f $conf ]] && head -n 1 "$conf" | grep -q "tests/cluster/start_slurm.sh"; then
    mv "$conf" "$conf.stopped"
    echo "stop_slurm: moved $conf to $conf.stopped"
fi
