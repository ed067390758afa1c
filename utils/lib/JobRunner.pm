# JobRunner.pm: what utils/run.pl, utils/slurm.pl and utils/queue.pl share.
#
# The three scripts take one command line (Kaldi's):
#   <script> [options] [JOB=1:N] <log-file> <command> [<args>...]
# and write the same log per job: the command, the start time, the output, the
# run time and the exit code. This module parses that command line and the
# scheduler config files, writes the bash code that runs one job and logs it,
# and, for the cluster back-ends, submits an array job and waits for it.
#
# Scheduler config files (--config conf/slurm.conf, --config conf/queue.conf)
# hold three kinds of lines; '#' starts a comment:
#   command sbatch --export=ALL          the submit command and its fixed arguments
#   option gpu=* --gres=gpu:$0           with --gpu N, N>0: add "--gres=gpu:N" to the job
#   option gpu=0                         with --gpu 0: add nothing
#   default gpu=0                        value of --gpu when it is not given
# The option arguments become directives in the job script ("#SBATCH ...",
# "#$ ..."); '$0' stands for the value, '*' matches any value and an exact value
# wins over '*'. A config file changes only the lines it names (the built-in
# lines of each back-end are printed by its --help). An option named in a config
# line, e.g. "option partition=* -p $0", is accepted on the command line too
# (--partition gpu), by run.pl as well, so one cmd.sh works with every back-end.
package JobRunner;

use strict;
use warnings;
use File::Basename qw(basename dirname);
use File::Path qw(make_path);
use Cwd qw(getcwd);
use Time::HiRes ();

# Options every back-end accepts; 'int' values are checked.
my %BUILTIN_OPTIONS = (
  gpu => 'int0', mem => 'str', time => 'str', num_threads => 'int1',
  max_jobs_run => 'int1', config => 'str',
);

sub shell_quote {
  my ($s) = @_;
  return $s if length($s) && $s =~ m{^[\w./:=@%+,-]+$};
  $s =~ s/'/'\\''/g;
  return "'$s'";
}

# Joins the command words as Kaldi does: a word without blanks is passed as is,
# so an escaped \| or \> is a pipe or a redirection; a word with blanks stays one
# word. A command given as a single word is a bash script of its own, so
# run.pl log 'a | b > c' runs a pipeline.
sub join_command {
  my @words = @_;
  return $words[0] if @words == 1;
  return join(' ', map { /^\S+$/ ? $_ : shell_quote($_) } @words);
}

sub _die_usage {
  my ($prog, $msg) = @_;
  print STDERR "$prog: $msg\n" if defined $msg;
  print STDERR "Run '$prog --help' for its options.\n";
  exit 1;
}

# Reads a config file; returns {command => ..., rules => [[name, value, args], ...],
# defaults => {name => value}}. $text is a built-in config given as a string.
sub parse_config {
  my ($prog, $text, $where) = @_;
  my %conf = (rules => [], defaults => {});
  my $n = 0;
  for my $line (split /\n/, $text) {
    $n++;
    $line =~ s/(^|\s)#.*//;
    $line =~ s/^\s+|\s+$//g;
    next if $line eq '';
    if ($line =~ /^command\s+(\S.*)$/) {
      $conf{command} = $1;
    } elsif ($line =~ /^option\s+([A-Za-z_]\w*)=(\S+)(?:\s+(.*))?$/) {
      push @{$conf{rules}}, [$1, $2, defined $3 ? $3 : ''];
    } elsif ($line =~ /^default\s+([A-Za-z_]\w*)=(\S+)$/) {
      $conf{defaults}{$1} = $2;
    } else {
      print STDERR "$prog: $where:$n: cannot parse '$line' "
        . "(expected 'command ...', 'option name=value ...' or 'default name=value')\n";
      exit 1;
    }
  }
  return \%conf;
}

# The built-in config with the lines of $file laid over it.
sub merge_config {
  my ($base, $over) = @_;
  my %conf = (command => $over->{command} || $base->{command},
              defaults => {%{$base->{defaults}}, %{$over->{defaults}}}, rules => []);
  my %overridden = map { ("$_->[0]=$_->[1]" => 1) } @{$over->{rules}};
  push @{$conf{rules}}, grep { !$overridden{"$_->[0]=$_->[1]"} } @{$base->{rules}};
  push @{$conf{rules}}, @{$over->{rules}};
  return \%conf;
}

# Parses the command line. $args{config} is the back-end's built-in config text.
# Returns a hash: opts, conf, jobvar (undef for a single job), start, end,
# log (a template holding the job variable) and cmd (a template too).
sub parse_command_line {
  my ($prog, $argv, %args) = @_;
  my @argv = @$argv;
  if (!@argv || $argv[0] eq '--help' || $argv[0] eq '-h') {
    print STDERR $args{usage};
    exit 1;
  }
  my %given;
  while (@argv && $argv[0] =~ /^--/) {
    my $arg = shift @argv;
    my ($name, $value) = $arg =~ /^--([^=]+)=(.*)$/s ? ($1, $2) : (substr($arg, 2), undef);
    $name =~ tr/-/_/;
    _die_usage($prog, "invalid option $arg") if $name !~ /^[A-Za-z_]\w*$/;
    if (!defined $value) {
      _die_usage($prog, "option --$name needs a value") if !@argv;
      $value = shift @argv;
    }
    $given{$name} = $value;
  }

  my $conf = parse_config($prog, $args{config} || '', "built-in config");
  if (defined $given{config}) {
    my $file = $given{config};
    open(my $fh, '<', $file) or do { print STDERR "$prog: cannot read config $file: $!\n"; exit 1 };
    my $text = do { local $/; <$fh> };
    close $fh;
    $conf = merge_config($conf, parse_config($prog, $text, $file));
  }
  my %known = %BUILTIN_OPTIONS;
  $known{$_->[0]} ||= 'str' for @{$conf->{rules}};
  $known{$_} ||= 'str' for keys %{$conf->{defaults}};
  for my $name (sort keys %given) {
    my $kind = $known{$name};
    _die_usage($prog, "invalid option --$name") if !$kind;
    my $v = $given{$name};
    _die_usage($prog, "--$name needs an integer >= 0, got '$v'") if $kind eq 'int0' && $v !~ /^\d+$/;
    _die_usage($prog, "--$name needs an integer >= 1, got '$v'") if $kind eq 'int1' && $v !~ /^0*[1-9]\d*$/;
    _die_usage($prog, "--$name needs a value") if $v eq '';
  }
  my %opts = (%{$conf->{defaults}}, %given);
  delete $opts{config};

  my ($jobvar, $start, $end);
  if (@argv && $argv[0] =~ /^([A-Za-z_]\w*)=([^\/]*)$/) {
    ($jobvar, my $range) = ($1, $2);
    shift @argv;
    if ($range =~ /^(\d+):(\d+)$/) {
      ($start, $end) = ($1 + 0, $2 + 0);
    } elsif ($range =~ /^(\d+)$/) {
      ($start, $end) = ($1 + 0, $1 + 0);
    } else {
      _die_usage($prog, "bad job range '$jobvar=$range' (expected e.g. $jobvar=1:4)");
    }
    _die_usage($prog, "bad job range '$jobvar=$range': the first job is after the last") if $start > $end;
  }
  _die_usage($prog, "expected a log file and a command") if @argv < 2;
  my $log = shift @argv;
  if (defined $jobvar && $end > $start && index($log, $jobvar) < 0) {
    my $n = $end - $start + 1;
    _die_usage($prog, "$n jobs would share one log file $log (put $jobvar in its name)");
  }
  if (!defined $jobvar) {
    ($start, $end) = (1, 1);
  }
  return (opts => \%opts, conf => $conf, jobvar => $jobvar, start => $start, end => $end,
          log => $log, cmd => join_command(@argv));
}

# The template with the job variable replaced by the job index.
sub substitute {
  my ($template, $jobvar, $id) = @_;
  return $template if !defined $jobvar;
  (my $s = $template) =~ s/\Q$jobvar\E/$id/g;
  return $s;
}

# Bash code that runs one job and writes its log. $a{task} is a shell word that
# gives the job index ('$1', '${SLURM_ARRAY_TASK_ID}'); if $a{done} is set, the
# file "$a{done}.<index>" receives the exit code once the log is complete.
sub job_script {
  my (%a) = @_;
  my @s;
  push @s, "task=$a{task}";
  push @s, 'cmd=' . shell_quote($a{cmd});
  push @s, 'log=' . shell_quote($a{log});
  push @s, 'done_file=' . shell_quote($a{done}) . '."$task"' if defined $a{done};
  if (defined $a{jobvar}) {
    push @s, 'var=' . shell_quote($a{jobvar});
    push @s, 'cmd=${cmd//"$var"/"$task"}', 'log=${log//"$var"/"$task"}';
  }
  push @s, 'mkdir -p -- "$(dirname -- "$log")" || exit 1';
  push @s, 'start=$(date +%s)';
  push @s, '{';
  push @s, q{  printf '%s\n' "$cmd" | sed 's/^/# /'};
  push @s, q{  printf '# Started at %s\n#\n' "$(date)"};
  push @s, q{  printf '# Running on %s\n' "$(hostname)"} if $a{show_host};
  push @s, '} > "$log" || exit 1';
  push @s, 'bash -c "$cmd" < /dev/null >> "$log" 2>&1';
  push @s, 'rc=$?';
  push @s, "printf '# Accounting: time=%d threads=%d\\n' \"\$((\$(date +%s) - start))\" $a{threads} >> \"\$log\"";
  push @s, q{printf '# Ended (code %d) at %s\n' "$rc" "$(date)" >> "$log"};
  if (defined $a{done}) {
    # Renamed into place so that a reader never sees a half-written file.
    push @s, 'echo "$rc" > "$done_file.tmp" && mv -f -- "$done_file.tmp" "$done_file"';
  }
  push @s, 'exit "$rc"';
  return join("\n", @s) . "\n";
}

# Prints the failure line and returns the exit code of the whole call.
# $rcs: {job index => exit code, undef when unknown}.
sub report {
  my ($prog, $job, $rcs) = @_;
  my @ids = ($job->{start} .. $job->{end});
  my @failed = grep { !defined $rcs->{$_} || $rcs->{$_} != 0 } @ids;
  return 0 if !@failed;
  my $log = substitute($job->{log}, $job->{jobvar}, $failed[0]);
  printf STDERR "%s: %d / %d failed, log is in %s\n", $prog, scalar(@failed), scalar(@ids), $log;
  return 1;
}

sub num_cpus {
  for my $cmd ('nproc', 'getconf _NPROCESSORS_ONLN') {
    my $n = `$cmd 2>/dev/null`;
    return $n + 0 if defined $n && $n =~ /^\s*([1-9]\d*)\s*$/;
  }
  return 1;
}

# The scheduler directives the options ask for, one string per rule that applies.
sub directives {
  my ($prog, $job) = @_;
  my $conf = $job->{conf};
  my @out;
  my %used;
  for my $rule (@{$conf->{rules}}) {
    my ($name) = @$rule;
    next if $used{$name}++ || !defined $job->{opts}{$name};
    my $value = $job->{opts}{$name};
    my ($match) = grep { $_->[0] eq $name && $_->[1] eq $value } @{$conf->{rules}};
    ($match) = grep { $_->[0] eq $name && $_->[1] eq '*' } @{$conf->{rules}} if !$match;
    if (!$match) {
      print STDERR "$prog: --$name $value: no 'option $name=$value' or 'option $name=*' line in the config\n";
      exit 1;
    }
    (my $args = $match->[2]) =~ s/\$0/$value/g;
    push @out, $args if $args ne '';
  }
  return @out;
}

# Submits the job array to a scheduler and waits for it. $be (the back-end):
#   name          'sbatch', 'qsub': named in messages
#   header        sub($job, $name, $qdir) -> lines after '#!/bin/bash' (array, name, output, directives)
#   submit_args   arguments added to the config's command, e.g. '--parsable'
#   task_var      the variable that holds the array index, e.g. 'SLURM_ARRAY_TASK_ID'
#   query         sub($jobid) -> 'running', 'gone' or 'unknown'
#   cancel        command that removes a job, given the job id as last argument
#   poll_env      environment variable with the polling interval in seconds
sub run_cluster {
  my ($prog, $job, $be) = @_;
  my $poll = $ENV{$be->{poll_env}};
  $poll = 10 if !defined $poll || $poll !~ /^(\d+\.?\d*|\.\d+)$/ || $poll <= 0;
  my ($start, $end, $jobvar) = @$job{qw(start end jobvar)};

  # The scheduler's files go to q/ under the first log directory that does not
  # depend on the job index; the name is the log's, without the index or suffix.
  my $dir = dirname($job->{log});
  $dir = dirname($dir) while defined $jobvar && index($dir, $jobvar) >= 0 && $dir ne dirname($dir);
  my $qdir = "$dir/q";
  my $name = basename($job->{log});
  if (defined $jobvar) { $name =~ s/\.?\Q$jobvar\E//g }
  $name =~ s/\.[A-Za-z]{1,5}$//;
  $name = 'job' if $name eq '';
  eval { make_path($qdir); 1 } or do { print STDERR "$prog: cannot create $qdir: $@"; exit 1 };

  # Old logs would be taken for new ones if a job never starts.
  unlink(substitute($job->{log}, $jobvar, $_)) for $start .. $end;
  my $pid = $$;
  my $done = "$qdir/done.$pid";
  my $script = "$qdir/$name.sh";
  my $cwd = getcwd();
  my @lines = ('#!/bin/bash', "# Written by $prog at " . localtime() . "; the job array runs:",
               map({ "#   $_" } split(/\n/, $job->{cmd})),
               $be->{header}->($job, $name, $qdir),
               'cd ' . shell_quote($cwd) . ' || exit 1',
               '# shellcheck disable=SC1091',
               '[ -f ./path.sh ] && . ./path.sh',
               job_script(task => "\${$be->{task_var}}", cmd => $job->{cmd}, log => $job->{log},
                          jobvar => $jobvar, done => $done, threads => $job->{opts}{num_threads} || 1,
                          show_host => 1));
  open(my $fh, '>', $script) or do { print STDERR "$prog: cannot write $script: $!\n"; exit 1 };
  print $fh join("\n", @lines);
  close $fh;

  my $submit = "$job->{conf}{command} $be->{submit_args} " . shell_quote($script);
  my $out = `$submit` // '';
  if ($? != 0) {
    my $why = $? == -1 ? "cannot run $be->{name}" : $? & 127 ? "$be->{name} got signal " . ($? & 127)
            : "$be->{name} exit code " . ($? >> 8);
    print STDERR $out;
    print STDERR "$prog: submitting $script failed ($why): $submit\n";
    exit 1;
  }
  my ($jobid) = $out =~ /^\s*(\d+)/m;
  if (!defined $jobid) {
    print STDERR "$prog: no job id in the output of '$submit': $out\n";
    exit 1;
  }
  local $SIG{INT} = local $SIG{TERM} = sub {
    system("$be->{cancel} $jobid >/dev/null 2>&1");
    print STDERR "$prog: interrupted; cancelled job $jobid\n";
    exit 1;
  };

  my %rcs;
  my $done_re = qr/^done\.$pid\.(\d+)$/;
  my $grace = 0;    # polls since the job left the queue with tasks unaccounted for
  my $unknown = 0;  # polls in a row the scheduler did not answer
  while (1) {
    if (opendir(my $dh, $qdir)) {  # a listing also refreshes NFS's view of the directory
      for my $f (readdir $dh) {
        next if $f !~ $done_re || exists $rcs{$1} || $1 < $start || $1 > $end;
        my $id = $1;
        open(my $in, '<', "$qdir/$f") or next;
        my $code = <$in>;
        close $in;
        next if !defined $code || $code !~ /^(\d+)\s*$/;
        $rcs{$id} = $1;
        unlink "$qdir/$f";
      }
      closedir $dh;
    }
    last if keys(%rcs) == $end - $start + 1;
    my $state = $be->{query}->($jobid);
    if ($state eq 'gone') {
      # Files written just before the job ended may take a while to show on NFS.
      last if ++$grace > 6;
    } else {
      $grace = 0;
      $unknown = $state eq 'unknown' ? $unknown + 1 : 0;
      print STDERR "$prog: warning: the scheduler did not answer about job $jobid; still waiting\n"
        if $unknown % 30 == 1;
    }
    Time::HiRes::sleep($poll);
  }
  for my $id ($start .. $end) {
    next if defined $rcs{$id};
    printf STDERR "%s: job %s task %d ended without an exit code (killed, out of memory or time?); "
      . "see %s and %s/%s.%d.out\n", $prog, $jobid, $id, substitute($job->{log}, $jobvar, $id),
      $qdir, $name, $id;
  }
  return report($prog, $job, \%rcs);
}

1;
