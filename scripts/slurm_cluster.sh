#!/usr/bin/env bash
# A one-node SLURM cluster with accounting on this machine, from Debian's packages: munge, MariaDB + slurmdbd,
# slurmctld and slurmd for this host's real CPUs and memory (no cgroups: proctrack/linuxproc, task/none; no
# systemd: every daemon is started in the foreground and detached). The sweep tests (pytest -m slurm) run on it.
#
#   sudo bash scripts/slurm_cluster.sh          # idempotent: a second run checks and starts only what is down
#
# Ends once `sinfo` shows the node idle and `sacct` answers; exits non-zero with the reason otherwise.
# Settings: SLURM_CI_PARTITION (default debug), SLURM_CI_CLUSTER (default ci), SLURM_CI_WAIT_S (default 120).
set -euo pipefail

PARTITION="${SLURM_CI_PARTITION:-debug}"
CLUSTER="${SLURM_CI_CLUSTER:-ci}"
WAIT_S="${SLURM_CI_WAIT_S:-120}"
ETC=/etc/slurm
LOGS=/var/log/slurm
HOST="$(hostname -s)"
DB_PASS="slurm-ci"

say() { echo "slurm_cluster: $*"; }
die() { echo "slurm_cluster: $*" >&2; exit 1; }
# wait_for <seconds> <description> <command...>: retry the command each second until it succeeds
wait_for() {
    local limit="$1" what="$2"
    shift 2
    for _ in $(seq "$limit"); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 1
    done
    die "$what did not come up within ${limit}s (logs: $LOGS)"
}
# detach <log> <command...>: run a foreground daemon in its own session, output to its log
detach() {
    local logfile="$1"
    shift
    setsid "$@" >>"$logfile" 2>&1 </dev/null &
}
# put <path> <mode> <owner> <content>: write a config file only when its content changed; says whether it did
put() {
    local path="$1" mode="$2" owner="$3" content="$4"
    if [ -f "$path" ] && [ "$(cat "$path")" = "$content" ]; then return 1; fi
    printf '%s\n' "$content" >"$path"
    chmod "$mode" "$path"
    chown "$owner" "$path"
    return 0
}

[ "$(id -u)" = 0 ] || die "needs root (packages, daemons, /etc/slurm): run it with sudo"
command -v apt-get >/dev/null 2>&1 || die "needs apt-get (Debian packages slurm-wlm slurmdbd munge mariadb-server)"

# 1. packages ---------------------------------------------------------------------------------------------------
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v slurmdbd >/dev/null \
    || ! command -v munged >/dev/null || ! command -v mariadbd >/dev/null; then
    say "installing slurm-wlm slurmdbd munge mariadb-server"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || die "apt-get update failed"
    apt-get install -y -qq --no-install-recommends slurm-wlm slurmdbd munge mariadb-server mariadb-client \
        >/dev/null || die "apt-get install slurm-wlm slurmdbd munge mariadb-server failed"
fi
mkdir -p "$ETC" "$LOGS" /var/spool/slurmctld /var/spool/slurmd /run/munge /run/mysqld /run/slurm
chown slurm:slurm "$LOGS" /var/spool/slurmctld /run/slurm
chown munge:munge /run/munge
chown mysql:mysql /run/mysqld

# 2. munge ------------------------------------------------------------------------------------------------------
if [ ! -s /etc/munge/munge.key ]; then
    mungekey --create --keyfile=/etc/munge/munge.key >/dev/null 2>&1 \
        || dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
fi
chown munge:munge /etc/munge/munge.key
chmod 400 /etc/munge/munge.key
munge_ok() { munge -n | unmunge; }
if ! munge_ok >/dev/null 2>&1; then
    say "starting munged"
    detach "$LOGS/munged.out" runuser -u munge -- /usr/sbin/munged --foreground
    wait_for 30 munged munge_ok
fi

# 3. MariaDB and the accounting database -------------------------------------------------------------------------
if [ ! -d /var/lib/mysql/mysql ]; then
    mysql_install_db --user=mysql --datadir=/var/lib/mysql >/dev/null || die "mysql_install_db failed"
fi
if ! mysqladmin ping >/dev/null 2>&1; then
    say "starting mariadbd"
    detach "$LOGS/mariadb.out" runuser -u mysql -- /usr/sbin/mariadbd --datadir=/var/lib/mysql \
        --socket=/run/mysqld/mysqld.sock --pid-file=/run/mysqld/mysqld.pid
    wait_for 60 mariadbd mysqladmin ping
fi
mysql -u root <<SQL || die "could not create the accounting database in MariaDB"
CREATE DATABASE IF NOT EXISTS slurm_acct_db;
CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$DB_PASS';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
FLUSH PRIVILEGES;
SQL

# 4. configuration ------------------------------------------------------------------------------------------------
# the node as slurmd itself measures it (CPUs, sockets, cores, threads, RealMemory)
NODE="$(slurmd -C | head -n 1)"
case "$NODE" in NodeName=*) ;; *) die "slurmd -C did not describe this node: $NODE" ;; esac
changed=0
put "$ETC/slurmdbd.conf" 600 slurm:slurm "# written by scripts/slurm_cluster.sh
AuthType=auth/munge
DbdHost=localhost
SlurmUser=slurm
LogFile=$LOGS/slurmdbd.log
PidFile=/run/slurm/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=$DB_PASS
StorageLoc=slurm_acct_db" && changed=1
put "$ETC/slurm.conf" 644 root:root "# written by scripts/slurm_cluster.sh: one node, accounting through slurmdbd, no cgroups
ClusterName=$CLUSTER
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=slurm
AuthType=auth/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurm/slurmctld.pid
SlurmdPidFile=/run/slurm/slurmd.pid
SlurmctldLogFile=$LOGS/slurmctld.log
SlurmdLogFile=$LOGS/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
JobCompType=jobcomp/none
ReturnToService=2
JobRequeue=1
MinJobAge=300
SlurmctldTimeout=30
KillWait=5
SlurmdTimeout=30
MpiDefault=none
$NODE NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=$PARTITION Nodes=ALL Default=YES MaxTime=60 State=UP" && changed=1

# 5. slurmdbd, the cluster in accounting, slurmctld, slurmd -----------------------------------------------------------
dbd_ok() { sacctmgr -n list cluster; }
if ! pgrep -x slurmdbd >/dev/null; then
    say "starting slurmdbd"
    detach "$LOGS/slurmdbd.out" /usr/sbin/slurmdbd -D
fi
wait_for 60 slurmdbd dbd_ok
if ! sacctmgr -n -P list cluster format=cluster | grep -qx "$CLUSTER"; then
    sacctmgr -i add cluster "$CLUSTER" >/dev/null || die "sacctmgr could not add cluster $CLUSTER"
fi
ctld_ok() { scontrol ping | grep -q UP; }
if ! pgrep -x slurmctld >/dev/null; then
    say "starting slurmctld"
    detach "$LOGS/slurmctld.out" /usr/sbin/slurmctld -D
    changed=0
fi
wait_for 60 slurmctld ctld_ok
if ! pgrep -x slurmd >/dev/null; then
    say "starting slurmd"
    detach "$LOGS/slurmd.out" /usr/sbin/slurmd -D
elif [ "$changed" = 1 ]; then
    scontrol reconfigure || die "scontrol reconfigure failed after a configuration change"
fi

# 6. ready: the node idle (or mixed by jobs already running) and accounting answering ---------------------------------
node_up() { sinfo -h -n "$HOST" -o %T | grep -Eq '^(idle|mixed|allocated)'; }
wait_for "$WAIT_S" "node $HOST (sinfo idle)" node_up
wait_for 30 "accounting (sacct)" sacct -n -X -S now-1hours
say "ready: partition $PARTITION, $(sinfo -h -n "$HOST" -o '%c CPUs, %m MB') on $HOST, accounting on (logs: $LOGS)"
