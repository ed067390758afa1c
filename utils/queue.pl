#!/usr/bin/env perl
# queue.pl: runs a command as a Grid Engine (SGE/UGE) array job, one task per job index, and waits for it.
# Usage: utils/queue.pl [options] [JOB=1:N] <log-file> <command> [<args>...]
#
# The command line and the logs are those of utils/run.pl; the mechanics are
# those of utils/slurm.pl: the job script goes to <log-dir>/q/<name>.sh and is
# submitted with "qsub -terse"; each task writes its exit code to
# <log-dir>/q/done.<pid>.<index>, polled with qstat every $QUEUE_PL_POLL
# seconds (default 10). Interrupting queue.pl deletes the job (qdel). The
# shared code and the config file format are described in utils/lib/JobRunner.pm.
use strict;
use warnings;
use FindBin qw($RealBin);
use lib "$RealBin/lib";
use JobRunner;

my $PROG = 'queue.pl';
my $CONFIG = <<'EOF';
command qsub -V -cwd -S /bin/bash -j y
option mem=* -l mem_free=$0
option time=* -l h_rt=$0
option num_threads=1
option num_threads=* -pe smp $0
option gpu=0
option gpu=* -l gpu=$0
default gpu=0
default num_threads=1
EOF

my $USAGE = <<"EOF";
Usage: queue.pl [options] [JOB=1:N] <log-file> <command> [<args>...]
Runs <command> through bash as a Grid Engine array job with one task per index
of the range JOB=1:N (any name, first index >= 1), replacing JOB by the index in
<log-file> and <command>, and waits for every task. Logs and words are handled
as by run.pl. The call exits 1 when a task fails or ends without an exit code,
naming its log.
  e.g.: queue.pl --mem 4G JOB=1:4 exp/log/count.JOB.log wc -l data/split4/JOB/text
Options:
  --num_threads <n>    slots per task (-pe smp n)
  --mem <size>         memory per task, e.g. 4G (-l mem_free=4G)
  --time <h:mm:ss>     time limit per task (-l h_rt=...)
  --gpu <n>            GPUs per task (-l gpu=n)
  --max_jobs_run <n>   tasks run at once (-tc n)
  --config <file>      lines that replace or add to the built-in config below
Built-in config (command, option name=value|* args with \$0 = value, default name=value):
$CONFIG
The polling interval is \$QUEUE_PL_POLL seconds (default 10).
EOF

# 'running' while qstat lists the job (pending, running or held).
sub query {
  my ($jobid) = @_;
  my $out = `qstat 2>&1` // '';
  return 'unknown' if $? != 0;
  return $out =~ /^\s*\Q$jobid\E\s/m ? 'running' : 'gone';
}

sub header {
  my ($job, $name, $qdir) = @_;
  (my $qname = $name) =~ s/[^\w.-]/_/g;
  $qname = "j$qname" if $qname =~ /^\d/;
  my @lines = ("#\$ -N $qname", "#\$ -t $job->{start}:$job->{end}", "#\$ -o $qdir/$name.\$TASK_ID.out");
  push @lines, "#\$ -tc $job->{opts}{max_jobs_run}" if $job->{opts}{max_jobs_run};
  return (@lines, map { "#\$ $_" } JobRunner::directives($PROG, $job));
}

my %job = JobRunner::parse_command_line($PROG, \@ARGV, usage => $USAGE, config => $CONFIG);
if ($job{start} < 1) {
  print STDERR "$PROG: Grid Engine task indices start at 1, got $job{jobvar}=$job{start}:$job{end}\n";
  exit 1;
}
exit JobRunner::run_cluster($PROG, \%job, {
  name => 'qsub', header => \&header, submit_args => '-terse', task_var => 'SGE_TASK_ID',
  query => \&query, cancel => 'qdel', poll_env => 'QUEUE_PL_POLL',
});
