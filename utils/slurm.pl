#!/usr/bin/env perl
# slurm.pl: runs a command as a Slurm job array, one task per job index, and waits for it.
# Usage: utils/slurm.pl [options] [JOB=1:N] <log-file> <command> [<args>...]
#
# The command line and the logs are those of utils/run.pl. The job script is
# written to <log-dir>/q/<name>.sh and submitted with "sbatch --parsable"; each
# task writes its log and then its exit code to <log-dir>/q/done.<pid>.<index>.
# slurm.pl polls those files and squeue every $SLURM_PL_POLL seconds (default
# 10); a task that leaves the queue without an exit code counts as failed.
# Interrupting slurm.pl cancels the job (scancel). The shared code and the
# config file format are described in utils/lib/JobRunner.pm.
use strict;
use warnings;
use FindBin qw($RealBin);
use lib "$RealBin/lib";
use JobRunner;

my $PROG = 'slurm.pl';
my $CONFIG = <<'EOF';
command sbatch --export=ALL
option mem=* --mem=$0
option time=* --time=$0
option num_threads=* --cpus-per-task=$0
option gpu=0
option gpu=* --gres=gpu:$0
default gpu=0
default num_threads=1
EOF

my $USAGE = <<"EOF";
Usage: slurm.pl [options] [JOB=1:N] <log-file> <command> [<args>...]
Runs <command> through bash as a Slurm job array with one task per index of the
range JOB=1:N (any name), replacing JOB by the index in <log-file> and <command>,
and waits for every task. Logs and words are handled as by run.pl. The call
exits 1 when a task fails or ends without an exit code, naming its log.
  e.g.: slurm.pl --mem 4G JOB=1:4 exp/log/count.JOB.log wc -l data/split4/JOB/text
Options:
  --num_threads <n>    CPUs per task (--cpus-per-task)
  --mem <size>         memory per task, e.g. 4G (--mem)
  --time <h:mm:ss>     time limit per task (--time)
  --gpu <n>            GPUs per task (--gres=gpu:n)
  --max_jobs_run <n>   tasks run at once (--array=1-N%n)
  --config <file>      lines that replace or add to the built-in config below
Built-in config (command, option name=value|* args with \$0 = value, default name=value):
$CONFIG
The polling interval is \$SLURM_PL_POLL seconds (default 10).
EOF

my $TERMINAL = qr/^(COMPLETED|CANCELLED|FAILED|TIMEOUT|NODE_FAIL|PREEMPTED|BOOT_FAIL|DEADLINE|OUT_OF_MEMORY|SPECIAL_EXIT|REVOKED)/;

# 'running' while a task of the job is pending or running; squeue forgets a job
# some minutes after it ends ("Invalid job id"), or lists it in a final state.
sub query {
  my ($jobid) = @_;
  my $out = `squeue --noheader --jobs $jobid --format %T 2>&1` // '';
  if ($? != 0) {
    return $out =~ /invalid job id/i ? 'gone' : 'unknown';
  }
  for my $state (split /\n/, $out) {
    $state =~ s/\s+//g;
    return 'running' if $state ne '' && $state !~ $TERMINAL;
  }
  return 'gone';
}

sub header {
  my ($job, $name, $qdir) = @_;
  my $array = "$job->{start}-$job->{end}";
  $array .= "%$job->{opts}{max_jobs_run}" if $job->{opts}{max_jobs_run};
  return ("#SBATCH --job-name=$name", "#SBATCH --array=$array", "#SBATCH --output=$qdir/$name.%a.out",
          map { "#SBATCH $_" } JobRunner::directives($PROG, $job));
}

my %job = JobRunner::parse_command_line($PROG, \@ARGV, usage => $USAGE, config => $CONFIG);
exit JobRunner::run_cluster($PROG, \%job, {
  name => 'sbatch', header => \&header, submit_args => '--parsable', task_var => 'SLURM_ARRAY_TASK_ID',
  query => \&query, cancel => 'scancel', poll_env => 'SLURM_PL_POLL',
});
