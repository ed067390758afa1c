#!/usr/bin/env perl
# run.pl: runs a command on this machine, once or once per job index, with a log per job.
# Usage: utils/run.pl [options] [JOB=1:N] <log-file> <command> [<args>...]
#
# Kaldi's interface, shared with utils/slurm.pl and utils/queue.pl so that
# cmd.sh picks the back-end: "JOB" (any name before '=') is replaced by the job
# index in the log file and the command; the command runs under bash; each log
# holds the command, the start time, the output, the run time and the exit code.
# When a job fails the call prints "run.pl: K / N failed, log is in <log>" and
# exits 1. The shared code is in utils/lib/JobRunner.pm.
use strict;
use warnings;
use FindBin qw($RealBin);
use lib "$RealBin/lib";
use POSIX ();
use JobRunner;

my $PROG = 'run.pl';
my $USAGE = <<'EOF';
Usage: run.pl [options] [JOB=1:N] <log-file> <command> [<args>...]
Runs <command> through bash on this machine, once, or once per job index with a
range such as JOB=1:N, where JOB (any name) is replaced by the index in
<log-file> and <command>. A word of <command> with blanks stays one word, so
pipes and redirections are written \| and \>, or the whole command is given as
one quoted word. Each log starts with the command and ends with its exit code;
the call exits 1 when a job fails, naming the first failed job's log.
  e.g.: run.pl JOB=1:4 exp/log/count.JOB.log wc -l data/split4/JOB/text
        run.pl exp/log/sort.log 'sort data/text | uniq > exp/text'
Options:
  --max_jobs_run <n>   jobs run at once (default: the number of CPUs)
  --num_threads <n>    threads per job, recorded in the log (default: 1)
  --gpu <n>, --mem <size>, --time <h:mm:ss>
                       accepted for the same command line as slurm.pl and queue.pl; ignored
  --config <file>      a slurm.pl/queue.pl config: the options it declares are accepted (and ignored)
EOF

my %job = JobRunner::parse_command_line($PROG, \@ARGV, usage => $USAGE);
my $max_jobs = $job{opts}{max_jobs_run} || JobRunner::num_cpus();
my $script = JobRunner::job_script(task => '"$1"', cmd => $job{cmd}, log => $job{log},
                                   jobvar => $job{jobvar}, threads => $job{opts}{num_threads} || 1);

# Each job is a process group of its own, so that stopping run.pl stops the
# whole pipeline of every running job, not only its first process.
my %running;  # pid -> job index
my $stop = sub {
  my ($sig) = @_;
  kill('TERM', -$_) for keys %running;
  print STDERR "$PROG: got SIG$sig, stopped the running jobs\n";
  exit 1;
};
local $SIG{INT} = $stop;
local $SIG{TERM} = $stop;

my %rcs;
my @todo = ($job{start} .. $job{end});
while (@todo || %running) {
  while (@todo && keys(%running) < $max_jobs) {
    my $id = shift @todo;
    my $pid = fork();
    die "$PROG: cannot fork: $!\n" if !defined $pid;
    if ($pid == 0) {
      setpgrp(0, 0);
      exec('bash', '-c', $script, $PROG, $id) or POSIX::_exit(127);
    }
    $running{$pid} = $id;
  }
  my $pid = waitpid(-1, 0);
  last if $pid < 0;
  $rcs{delete $running{$pid}} = $? if exists $running{$pid};
}
exit JobRunner::report($PROG, \%job, \%rcs);
