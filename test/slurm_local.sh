#!/bin/bash
# A single-node Slurm cluster on this machine for test/sweep_slurm.test.ts (as root; Debian's
# slurm-wlm and munge installed, as .ci/run does): `slurm_local.sh start DIR` makes a munge key if
# there is none, writes /etc/slurm/slurm.conf for this host with all state under DIR, starts munged
# (unless one answers), slurmctld and slurmd, and waits for the node to be idle;
# `slurm_local.sh stop DIR` stops the daemons that start started (their pid files are under DIR).
set -u; cmd=${1:?start|stop}; dir=${2:?state dir}; mkdir -p "$dir"/{state,spool,log}
if [ "$cmd" = stop ]; then
  for p in ctld d munge; do [ -f "$dir/$p.pid" ] && kill "$(cat "$dir/$p.pid")" 2>/dev/null; done
  # wait for them to end, so that the next start finds the ports free
  for i in $(seq 50); do alive=0; for p in ctld d munge; do [ -f "$dir/$p.pid" ] && kill -0 "$(cat "$dir/$p.pid")" 2>/dev/null && alive=1; done; [ $alive = 0 ] && break; sleep 0.2; done
  exit 0
fi
for t in slurmctld slurmd munged sbatch; do command -v $t >/dev/null || [ -x /usr/sbin/$t ] || { echo "$t not found: install slurm-wlm and munge (apt-get install slurm-wlm munge)"; exit 1; }; done
[ "$(id -u)" = 0 ] || { echo "the single-node Slurm needs root (it writes /etc/slurm/slurm.conf and starts the daemons)"; exit 1; }
[ -s /etc/munge/munge.key ] || { dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null; chown munge:munge /etc/munge/munge.key; chmod 400 /etc/munge/munge.key; }
mkdir -p /run/munge && chown munge:munge /run/munge
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  su -s /bin/sh munge -c "/usr/sbin/munged --pid-file=/run/munge/munged.pid" || { echo "munged did not start"; exit 1; }
  cp /run/munge/munged.pid "$dir/munge.pid"; sleep 1
fi
H=$(hostname -s); MEM=$(awk '/MemTotal/{print int($2/1024)-1024}' /proc/meminfo)
mkdir -p /etc/slurm
cat > /etc/slurm/slurm.conf <<CONF
ClusterName=local
SlurmctldHost=$H
SlurmUser=root
AuthType=auth/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldLogFile=$dir/log/ctld.log
SlurmdLogFile=$dir/log/d.log
SlurmctldPidFile=$dir/ctld.pid
SlurmdPidFile=$dir/d.pid
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
NodeName=$H CPUs=$(nproc) RealMemory=$MEM State=UNKNOWN
PartitionName=debug Nodes=$H Default=YES MaxTime=INFINITE State=UP
CONF
/usr/sbin/slurmctld && /usr/sbin/slurmd || { echo "the slurm daemons did not start (logs in $dir/log: $(tail -2 "$dir"/log/*.log 2>/dev/null | tr '\n' ' '))"; exit 1; }
for i in $(seq 30); do sinfo -h -o %T 2>/dev/null | grep -q idle && exit 0; sleep 1; done
echo "the slurm node is not idle after 30 s (logs in $dir/log)"; exit 1
