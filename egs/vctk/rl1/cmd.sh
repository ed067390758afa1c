# Chooses how parallel jobs run; copy to your recipe and set cmd_backend.
#   local  run.pl on this machine (default)
#   slurm  utils/slurm.pl with conf/slurm.conf (sbatch array jobs)
#   sge    utils/queue.pl with conf/queue.conf (qsub array jobs)
# Every *_cmd has one interface: ${cmd} [--gpu N] [--mem X] [--num_threads N] JOB=1:N log/x.JOB.log command
cmd_backend=${cmd_backend:-local}
case "${cmd_backend}" in
  local)
    export train_cmd="run.pl"
    export cuda_cmd="run.pl"
    export decode_cmd="run.pl"
    ;;
  slurm)
    export train_cmd="slurm.pl --config conf/slurm.conf"
    export cuda_cmd="slurm.pl --config conf/slurm.conf"
    export decode_cmd="slurm.pl --config conf/slurm.conf"
    ;;
  sge)
    export train_cmd="queue.pl --config conf/queue.conf"
    export cuda_cmd="queue.pl --config conf/queue.conf"
    export decode_cmd="queue.pl --config conf/queue.conf"
    ;;
  *)
    echo "cmd.sh: unknown cmd_backend '${cmd_backend}' (local, slurm or sge)" >&2
    return 1 2>/dev/null || exit 1
    ;;
esac
