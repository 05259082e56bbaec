#!/usr/bin/env bash
# A real single-node Slurm on this machine, for the Slurm test (crates/tests/tests/slurm.rs) and for trying
# deploy/slurm/nas-workers.sbatch by hand. Debian's slurm-wlm and munge, run as root without systemd.
#   deploy/slurm/local-slurm.sh start   # installs (apt) if needed, writes the config, starts the daemons
#   deploy/slurm/local-slurm.sh stop    # stops the daemons it started
set -euo pipefail
STATE=/var/lib/nas-local-slurm
cmd=${1:-start}

stop() {
    for d in slurmd slurmctld munged; do
        if [ -f "$STATE/$d.pid" ]; then
            kill "$(cat "$STATE/$d.pid")" 2>/dev/null || true
            rm -f "$STATE/$d.pid"
        fi
        # Daemonizing leaves helper processes behind the recorded pid; this machine's test Slurm is ours.
        for _ in $(seq 1 20); do pgrep -x "$d" >/dev/null || break; pkill -x "$d" || true; sleep 0.25; done
    done
}

if [ "$cmd" = stop ]; then
    stop
    exit 0
fi
[ "$cmd" = start ] || { echo "usage: $0 start|stop" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "$0: must run as root (installs packages, starts daemons)" >&2; exit 1; }

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null
fi
mkdir -p "$STATE" /etc/munge /var/log/munge /run/munge /var/lib/munge /etc/slurm \
    /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
if [ ! -s /etc/munge/munge.key ]; then
    head -c 1024 /dev/urandom > /etc/munge/munge.key
fi
chown -R munge:munge /etc/munge /var/log/munge /run/munge /var/lib/munge
chmod 400 /etc/munge/munge.key
stop
# munged daemonizes; its pid file is /run/munge/munged.pid.
munged --force 2>/dev/null || true
sleep 0.5
cp /run/munge/munged.pid "$STATE/munged.pid" 2>/dev/null || pgrep -x munged | head -1 > "$STATE/munged.pid"

host=$(hostname -s)
cpus=$(nproc)
mem=$(( $(free -m | awk '/^Mem:/ {print $2}') * 9 / 10 ))
cat > /etc/slurm/slurm.conf <<CONF
ClusterName=nas-local
SlurmctldHost=$host
SlurmUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
MpiDefault=none
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=main Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
slurmctld
slurmd
for _ in $(seq 1 60); do
    if sinfo -h -o '%T' 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then
        echo "local Slurm up: $(sinfo -h -o '%P %D %T %c CPUs')"
        exit 0
    fi
    sleep 0.5
done
echo "$0: the node did not become idle; see /var/log/slurm/" >&2
sinfo >&2 || true
exit 1
