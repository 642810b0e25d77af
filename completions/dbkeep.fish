# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_dbkeep_global_optspecs
    string join \n c/config= v/verbose q/quiet no-progress log-format= h/help V/version
end

function __fish_dbkeep_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_dbkeep_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_dbkeep_using_subcommand
    set -l cmd (__fish_dbkeep_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c dbkeep -n "__fish_dbkeep_needs_command" -s c -l config -d 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)' -r -F
complete -c dbkeep -n "__fish_dbkeep_needs_command" -l log-format -d 'Log format on stderr: `text` for people, `json` (one object per line) for machines' -r -f -a "text\t'Human-readable lines (colored on a terminal)'
json\t'One JSON object per line'"
complete -c dbkeep -n "__fish_dbkeep_needs_command" -s v -l verbose -d 'More log output (-v: debug, -vv: trace)'
complete -c dbkeep -n "__fish_dbkeep_needs_command" -s q -l quiet -d 'Only warnings and errors on stderr'
complete -c dbkeep -n "__fish_dbkeep_needs_command" -l no-progress -d 'No progress display (a bar on a terminal, else a log line every 10 s)'
complete -c dbkeep -n "__fish_dbkeep_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c dbkeep -n "__fish_dbkeep_needs_command" -s V -l version -d 'Print version'
complete -c dbkeep -n "__fish_dbkeep_needs_command" -f -a "backup" -d 'Back up the config\'s jobs, or one database URL with `--to DIR`'
complete -c dbkeep -n "__fish_dbkeep_needs_command" -f -a "restore" -d 'Restore a backup into a database'
complete -c dbkeep -n "__fish_dbkeep_needs_command" -f -a "list" -d 'List backups, newest first'
complete -c dbkeep -n "__fish_dbkeep_needs_command" -f -a "verify" -d 'Re-read a backup and check it against its manifest'
complete -c dbkeep -n "__fish_dbkeep_needs_command" -f -a "inspect" -d 'Show a source\'s server, client, TLS, databases and sizes, writing nothing'
complete -c dbkeep -n "__fish_dbkeep_needs_command" -f -a "prune" -d 'Delete old backups by the jobs\' retention rules'
complete -c dbkeep -n "__fish_dbkeep_needs_command" -f -a "schedule" -d 'Run jobs on their schedules, list fire times, or install timers'
complete -c dbkeep -n "__fish_dbkeep_needs_command" -f -a "config" -d 'Check, show or create the config file'
complete -c dbkeep -n "__fish_dbkeep_needs_command" -f -a "notify" -d 'Send test notifications'
complete -c dbkeep -n "__fish_dbkeep_needs_command" -f -a "wal" -d 'Archive and fetch PostgreSQL WAL (`archive_command`, `restore_command`)'
complete -c dbkeep -n "__fish_dbkeep_needs_command" -f -a "binlog" -d 'Archive MariaDB/MySQL binary logs for point-in-time recovery'
complete -c dbkeep -n "__fish_dbkeep_needs_command" -f -a "generate" -d 'Write man pages and shell completions (for packagers)'
complete -c dbkeep -n "__fish_dbkeep_needs_command" -f -a "demo" -d 'Try dbkeep: create a sample SQLite database, back it up to ./backups, restore it, and compare'
complete -c dbkeep -n "__fish_dbkeep_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand backup" -l to -d 'One-off: store into this folder, with no config file' -r
complete -c dbkeep -n "__fish_dbkeep_using_subcommand backup" -l job -d 'One-off: the job name to file the backup under (default: the database name)' -r
complete -c dbkeep -n "__fish_dbkeep_using_subcommand backup" -l compression -d 'Override the compression' -r -f -a "zstd\t'zstd, multi-threaded (default)'
gzip\t'gzip, for tools that only know gzip'
none\t'Store the dump as it is'"
complete -c dbkeep -n "__fish_dbkeep_using_subcommand backup" -l level -d 'Override the compression level' -r
complete -c dbkeep -n "__fish_dbkeep_using_subcommand backup" -l threads -d 'Override the zstd worker threads (0: one per core, at most 4)' -r
complete -c dbkeep -n "__fish_dbkeep_using_subcommand backup" -l jobs -d 'Jobs to run at the same time (default: `defaults.concurrency`, else 1)' -r
complete -c dbkeep -n "__fish_dbkeep_using_subcommand backup" -l wait-lock -d 'Wait this long for the job\'s lock when another run holds it (e.g. `30m`), instead of failing at once with exit code 75' -r
complete -c dbkeep -n "__fish_dbkeep_using_subcommand backup" -s c -l config -d 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)' -r -F
complete -c dbkeep -n "__fish_dbkeep_using_subcommand backup" -l log-format -d 'Log format on stderr: `text` for people, `json` (one object per line) for machines' -r -f -a "text\t'Human-readable lines (colored on a terminal)'
json\t'One JSON object per line'"
complete -c dbkeep -n "__fish_dbkeep_using_subcommand backup" -l json -d 'Print one JSON result per job on stdout'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand backup" -s v -l verbose -d 'More log output (-v: debug, -vv: trace)'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand backup" -s q -l quiet -d 'Only warnings and errors on stderr'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand backup" -l no-progress -d 'No progress display (a bar on a terminal, else a log line every 10 s)'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand backup" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand restore" -l job -d 'The job, when reading with `--from` (same as JOB)' -r
complete -c dbkeep -n "__fish_dbkeep_using_subcommand restore" -l from -d 'Read backups from this folder, with no config file' -r
complete -c dbkeep -n "__fish_dbkeep_using_subcommand restore" -l storage -d 'Which storage of the job to read from (default: its first)' -r
complete -c dbkeep -n "__fish_dbkeep_using_subcommand restore" -l id -d 'The backup id (or a unique prefix); default: the latest' -r
complete -c dbkeep -n "__fish_dbkeep_using_subcommand restore" -l before -d 'The latest backup started before this time (RFC 3339 or `YYYY-MM-DD [HH:MM]`, UTC)' -r
complete -c dbkeep -n "__fish_dbkeep_using_subcommand restore" -l target -d 'Where to restore: a database URL or SQLite path (default: the job\'s source)' -r
complete -c dbkeep -n "__fish_dbkeep_using_subcommand restore" -l to-database -d 'Restore into this database name instead' -r
complete -c dbkeep -n "__fish_dbkeep_using_subcommand restore" -l database -d 'Only this database of a multi-database backup' -r
complete -c dbkeep -n "__fish_dbkeep_using_subcommand restore" -l data-dir -d 'PostgreSQL `method: physical`: restore the cluster into this new (or empty) data directory, set up to replay the job\'s WAL archive' -r -F
complete -c dbkeep -n "__fish_dbkeep_using_subcommand restore" -l to-time -d 'Recover to this time (RFC 3339, fractional seconds allowed, e.g. 2026-12-01T09:30:00.25Z): with `--data-dir`, replay the WAL archive to it and promote; for a `binlog: true` job, restore the last dump before it and replay the binlogs up to it' -r
complete -c dbkeep -n "__fish_dbkeep_using_subcommand restore" -l to-lsn -d 'With `--data-dir`: recover to this WAL position (e.g. 0/3000028), then promote' -r
complete -c dbkeep -n "__fish_dbkeep_using_subcommand restore" -l to-xid -d 'With `--data-dir`: recover through this transaction id, then promote' -r
complete -c dbkeep -n "__fish_dbkeep_using_subcommand restore" -l identity -d 'age identity file (private keys) for an encrypted backup; may be repeated' -r -F
complete -c dbkeep -n "__fish_dbkeep_using_subcommand restore" -l passphrase-file -d 'File whose first line is the passphrase of a passphrase-encrypted backup (else DBKEEP_AGE_PASSPHRASE, else the job\'s `passphrase_file`)' -r -F
complete -c dbkeep -n "__fish_dbkeep_using_subcommand restore" -s c -l config -d 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)' -r -F
complete -c dbkeep -n "__fish_dbkeep_using_subcommand restore" -l log-format -d 'Log format on stderr: `text` for people, `json` (one object per line) for machines' -r -f -a "text\t'Human-readable lines (colored on a terminal)'
json\t'One JSON object per line'"
complete -c dbkeep -n "__fish_dbkeep_using_subcommand restore" -l no-globals -d 'Skip PostgreSQL roles and tablespaces of a `databases: all` backup'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand restore" -l no-owner -d 'PostgreSQL: do not restore object ownership'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand restore" -l force -d 'Restore into a target that is not empty, replacing the objects the backup holds'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand restore" -s v -l verbose -d 'More log output (-v: debug, -vv: trace)'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand restore" -s q -l quiet -d 'Only warnings and errors on stderr'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand restore" -l no-progress -d 'No progress display (a bar on a terminal, else a log line every 10 s)'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand restore" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand list" -l from -d 'Read backups from this folder, with no config file' -r
complete -c dbkeep -n "__fish_dbkeep_using_subcommand list" -l storage -d 'Only this storage of the job (default: every storage in the config)' -r
complete -c dbkeep -n "__fish_dbkeep_using_subcommand list" -s c -l config -d 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)' -r -F
complete -c dbkeep -n "__fish_dbkeep_using_subcommand list" -l log-format -d 'Log format on stderr: `text` for people, `json` (one object per line) for machines' -r -f -a "text\t'Human-readable lines (colored on a terminal)'
json\t'One JSON object per line'"
complete -c dbkeep -n "__fish_dbkeep_using_subcommand list" -l json -d 'Print JSON on stdout'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand list" -s v -l verbose -d 'More log output (-v: debug, -vv: trace)'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand list" -s q -l quiet -d 'Only warnings and errors on stderr'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand list" -l no-progress -d 'No progress display (a bar on a terminal, else a log line every 10 s)'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand list" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand verify" -l job -d 'The job, when reading with `--from` (same as JOB)' -r
complete -c dbkeep -n "__fish_dbkeep_using_subcommand verify" -l from -d 'Read backups from this folder, with no config file' -r
complete -c dbkeep -n "__fish_dbkeep_using_subcommand verify" -l storage -d 'Which storage of the job to read from (default: its first)' -r
complete -c dbkeep -n "__fish_dbkeep_using_subcommand verify" -l id -d 'The backup id (or a unique prefix); default: the latest' -r
complete -c dbkeep -n "__fish_dbkeep_using_subcommand verify" -l identity -d 'age identity file (private keys) for an encrypted backup; may be repeated' -r -F
complete -c dbkeep -n "__fish_dbkeep_using_subcommand verify" -l passphrase-file -d 'File whose first line is the passphrase of a passphrase-encrypted backup (else DBKEEP_AGE_PASSPHRASE, else the job\'s `passphrase_file`)' -r -F
complete -c dbkeep -n "__fish_dbkeep_using_subcommand verify" -s c -l config -d 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)' -r -F
complete -c dbkeep -n "__fish_dbkeep_using_subcommand verify" -l log-format -d 'Log format on stderr: `text` for people, `json` (one object per line) for machines' -r -f -a "text\t'Human-readable lines (colored on a terminal)'
json\t'One JSON object per line'"
complete -c dbkeep -n "__fish_dbkeep_using_subcommand verify" -l json -d 'Print JSON on stdout'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand verify" -s v -l verbose -d 'More log output (-v: debug, -vv: trace)'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand verify" -s q -l quiet -d 'Only warnings and errors on stderr'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand verify" -l no-progress -d 'No progress display (a bar on a terminal, else a log line every 10 s)'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand verify" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand inspect" -s c -l config -d 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)' -r -F
complete -c dbkeep -n "__fish_dbkeep_using_subcommand inspect" -l log-format -d 'Log format on stderr: `text` for people, `json` (one object per line) for machines' -r -f -a "text\t'Human-readable lines (colored on a terminal)'
json\t'One JSON object per line'"
complete -c dbkeep -n "__fish_dbkeep_using_subcommand inspect" -l json -d 'Print JSON on stdout'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand inspect" -s v -l verbose -d 'More log output (-v: debug, -vv: trace)'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand inspect" -s q -l quiet -d 'Only warnings and errors on stderr'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand inspect" -l no-progress -d 'No progress display (a bar on a terminal, else a log line every 10 s)'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand inspect" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand prune" -l wait-lock -d 'Wait this long for the job\'s lock when another run holds it' -r
complete -c dbkeep -n "__fish_dbkeep_using_subcommand prune" -s c -l config -d 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)' -r -F
complete -c dbkeep -n "__fish_dbkeep_using_subcommand prune" -l log-format -d 'Log format on stderr: `text` for people, `json` (one object per line) for machines' -r -f -a "text\t'Human-readable lines (colored on a terminal)'
json\t'One JSON object per line'"
complete -c dbkeep -n "__fish_dbkeep_using_subcommand prune" -s n -l dry-run -d 'Only show what would be deleted'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand prune" -l force -d 'Delete even when the rules would delete more than half of a job\'s backups (otherwise such a prune stops, in case a clock or a manifest is wrong)'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand prune" -l json -d 'Print JSON on stdout'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand prune" -s v -l verbose -d 'More log output (-v: debug, -vv: trace)'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand prune" -s q -l quiet -d 'Only warnings and errors on stderr'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand prune" -l no-progress -d 'No progress display (a bar on a terminal, else a log line every 10 s)'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand prune" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand schedule; and not __fish_seen_subcommand_from run list install help" -s c -l config -d 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)' -r -F
complete -c dbkeep -n "__fish_dbkeep_using_subcommand schedule; and not __fish_seen_subcommand_from run list install help" -l log-format -d 'Log format on stderr: `text` for people, `json` (one object per line) for machines' -r -f -a "text\t'Human-readable lines (colored on a terminal)'
json\t'One JSON object per line'"
complete -c dbkeep -n "__fish_dbkeep_using_subcommand schedule; and not __fish_seen_subcommand_from run list install help" -s v -l verbose -d 'More log output (-v: debug, -vv: trace)'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand schedule; and not __fish_seen_subcommand_from run list install help" -s q -l quiet -d 'Only warnings and errors on stderr'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand schedule; and not __fish_seen_subcommand_from run list install help" -l no-progress -d 'No progress display (a bar on a terminal, else a log line every 10 s)'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand schedule; and not __fish_seen_subcommand_from run list install help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand schedule; and not __fish_seen_subcommand_from run list install help" -f -a "run" -d 'Run every scheduled job at its times, in the foreground, until SIGTERM (for systemd `Type=simple` and containers). SIGHUP reloads the config'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand schedule; and not __fish_seen_subcommand_from run list install help" -f -a "list" -d 'Show each scheduled job\'s next fire times, in its time zone and in UTC'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand schedule; and not __fish_seen_subcommand_from run list install help" -f -a "install" -d 'Write a systemd service and timer, or crontab lines, for each scheduled job'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand schedule; and not __fish_seen_subcommand_from run list install help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand schedule; and __fish_seen_subcommand_from run" -s c -l config -d 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)' -r -F
complete -c dbkeep -n "__fish_dbkeep_using_subcommand schedule; and __fish_seen_subcommand_from run" -l log-format -d 'Log format on stderr: `text` for people, `json` (one object per line) for machines' -r -f -a "text\t'Human-readable lines (colored on a terminal)'
json\t'One JSON object per line'"
complete -c dbkeep -n "__fish_dbkeep_using_subcommand schedule; and __fish_seen_subcommand_from run" -s v -l verbose -d 'More log output (-v: debug, -vv: trace)'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand schedule; and __fish_seen_subcommand_from run" -s q -l quiet -d 'Only warnings and errors on stderr'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand schedule; and __fish_seen_subcommand_from run" -l no-progress -d 'No progress display (a bar on a terminal, else a log line every 10 s)'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand schedule; and __fish_seen_subcommand_from run" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand schedule; and __fish_seen_subcommand_from list" -s n -l count -d 'How many fire times per job' -r
complete -c dbkeep -n "__fish_dbkeep_using_subcommand schedule; and __fish_seen_subcommand_from list" -l after -d 'Fire times after this time instead of now (RFC 3339 or `YYYY-MM-DD [HH:MM]`, UTC)' -r
complete -c dbkeep -n "__fish_dbkeep_using_subcommand schedule; and __fish_seen_subcommand_from list" -s c -l config -d 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)' -r -F
complete -c dbkeep -n "__fish_dbkeep_using_subcommand schedule; and __fish_seen_subcommand_from list" -l log-format -d 'Log format on stderr: `text` for people, `json` (one object per line) for machines' -r -f -a "text\t'Human-readable lines (colored on a terminal)'
json\t'One JSON object per line'"
complete -c dbkeep -n "__fish_dbkeep_using_subcommand schedule; and __fish_seen_subcommand_from list" -l json -d 'Print JSON on stdout'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand schedule; and __fish_seen_subcommand_from list" -s v -l verbose -d 'More log output (-v: debug, -vv: trace)'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand schedule; and __fish_seen_subcommand_from list" -s q -l quiet -d 'Only warnings and errors on stderr'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand schedule; and __fish_seen_subcommand_from list" -l no-progress -d 'No progress display (a bar on a terminal, else a log line every 10 s)'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand schedule; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand schedule; and __fish_seen_subcommand_from install" -l dir -d 'Write into this folder instead of the scheduler\'s own' -r -F
complete -c dbkeep -n "__fish_dbkeep_using_subcommand schedule; and __fish_seen_subcommand_from install" -l randomized-delay -d 'systemd: spread starts over up to this long (`RandomizedDelaySec=`)' -r
complete -c dbkeep -n "__fish_dbkeep_using_subcommand schedule; and __fish_seen_subcommand_from install" -l binary -d 'The dbkeep binary the units run (default: this one)' -r -F
complete -c dbkeep -n "__fish_dbkeep_using_subcommand schedule; and __fish_seen_subcommand_from install" -s c -l config -d 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)' -r -F
complete -c dbkeep -n "__fish_dbkeep_using_subcommand schedule; and __fish_seen_subcommand_from install" -l log-format -d 'Log format on stderr: `text` for people, `json` (one object per line) for machines' -r -f -a "text\t'Human-readable lines (colored on a terminal)'
json\t'One JSON object per line'"
complete -c dbkeep -n "__fish_dbkeep_using_subcommand schedule; and __fish_seen_subcommand_from install" -l systemd -d 'Write systemd units'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand schedule; and __fish_seen_subcommand_from install" -l cron -d 'Write crontab lines'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand schedule; and __fish_seen_subcommand_from install" -l user -d 'For the current user: systemd user units (~/.config/systemd/user), or lines for the user\'s crontab'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand schedule; and __fish_seen_subcommand_from install" -l print -d 'Print the files instead of writing them'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand schedule; and __fish_seen_subcommand_from install" -s v -l verbose -d 'More log output (-v: debug, -vv: trace)'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand schedule; and __fish_seen_subcommand_from install" -s q -l quiet -d 'Only warnings and errors on stderr'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand schedule; and __fish_seen_subcommand_from install" -l no-progress -d 'No progress display (a bar on a terminal, else a log line every 10 s)'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand schedule; and __fish_seen_subcommand_from install" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand schedule; and __fish_seen_subcommand_from help" -f -a "run" -d 'Run every scheduled job at its times, in the foreground, until SIGTERM (for systemd `Type=simple` and containers). SIGHUP reloads the config'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand schedule; and __fish_seen_subcommand_from help" -f -a "list" -d 'Show each scheduled job\'s next fire times, in its time zone and in UTC'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand schedule; and __fish_seen_subcommand_from help" -f -a "install" -d 'Write a systemd service and timer, or crontab lines, for each scheduled job'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand schedule; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand config; and not __fish_seen_subcommand_from validate show schema init help" -s c -l config -d 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)' -r -F
complete -c dbkeep -n "__fish_dbkeep_using_subcommand config; and not __fish_seen_subcommand_from validate show schema init help" -l log-format -d 'Log format on stderr: `text` for people, `json` (one object per line) for machines' -r -f -a "text\t'Human-readable lines (colored on a terminal)'
json\t'One JSON object per line'"
complete -c dbkeep -n "__fish_dbkeep_using_subcommand config; and not __fish_seen_subcommand_from validate show schema init help" -s v -l verbose -d 'More log output (-v: debug, -vv: trace)'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand config; and not __fish_seen_subcommand_from validate show schema init help" -s q -l quiet -d 'Only warnings and errors on stderr'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand config; and not __fish_seen_subcommand_from validate show schema init help" -l no-progress -d 'No progress display (a bar on a terminal, else a log line every 10 s)'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand config; and not __fish_seen_subcommand_from validate show schema init help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand config; and not __fish_seen_subcommand_from validate show schema init help" -f -a "validate" -d 'Check the config: report every problem with its YAML path (exit 78), then check tools, password files and storages (exit 1 on failure)'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand config; and not __fish_seen_subcommand_from validate show schema init help" -f -a "show" -d 'Print the effective config (file + DBKEEP_* env + defaults), secrets redacted'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand config; and not __fish_seen_subcommand_from validate show schema init help" -f -a "schema" -d 'Print the JSON Schema of the config file (for editors: yaml-language-server)'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand config; and not __fish_seen_subcommand_from validate show schema init help" -f -a "init" -d 'Write a commented starter config'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand config; and not __fish_seen_subcommand_from validate show schema init help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand config; and __fish_seen_subcommand_from validate" -s c -l config -d 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)' -r -F
complete -c dbkeep -n "__fish_dbkeep_using_subcommand config; and __fish_seen_subcommand_from validate" -l log-format -d 'Log format on stderr: `text` for people, `json` (one object per line) for machines' -r -f -a "text\t'Human-readable lines (colored on a terminal)'
json\t'One JSON object per line'"
complete -c dbkeep -n "__fish_dbkeep_using_subcommand config; and __fish_seen_subcommand_from validate" -l no-environment -d 'Only check the file; do not look for tools or touch storages'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand config; and __fish_seen_subcommand_from validate" -s v -l verbose -d 'More log output (-v: debug, -vv: trace)'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand config; and __fish_seen_subcommand_from validate" -s q -l quiet -d 'Only warnings and errors on stderr'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand config; and __fish_seen_subcommand_from validate" -l no-progress -d 'No progress display (a bar on a terminal, else a log line every 10 s)'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand config; and __fish_seen_subcommand_from validate" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand config; and __fish_seen_subcommand_from show" -s c -l config -d 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)' -r -F
complete -c dbkeep -n "__fish_dbkeep_using_subcommand config; and __fish_seen_subcommand_from show" -l log-format -d 'Log format on stderr: `text` for people, `json` (one object per line) for machines' -r -f -a "text\t'Human-readable lines (colored on a terminal)'
json\t'One JSON object per line'"
complete -c dbkeep -n "__fish_dbkeep_using_subcommand config; and __fish_seen_subcommand_from show" -s v -l verbose -d 'More log output (-v: debug, -vv: trace)'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand config; and __fish_seen_subcommand_from show" -s q -l quiet -d 'Only warnings and errors on stderr'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand config; and __fish_seen_subcommand_from show" -l no-progress -d 'No progress display (a bar on a terminal, else a log line every 10 s)'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand config; and __fish_seen_subcommand_from show" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand config; and __fish_seen_subcommand_from schema" -s c -l config -d 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)' -r -F
complete -c dbkeep -n "__fish_dbkeep_using_subcommand config; and __fish_seen_subcommand_from schema" -l log-format -d 'Log format on stderr: `text` for people, `json` (one object per line) for machines' -r -f -a "text\t'Human-readable lines (colored on a terminal)'
json\t'One JSON object per line'"
complete -c dbkeep -n "__fish_dbkeep_using_subcommand config; and __fish_seen_subcommand_from schema" -s v -l verbose -d 'More log output (-v: debug, -vv: trace)'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand config; and __fish_seen_subcommand_from schema" -s q -l quiet -d 'Only warnings and errors on stderr'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand config; and __fish_seen_subcommand_from schema" -l no-progress -d 'No progress display (a bar on a terminal, else a log line every 10 s)'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand config; and __fish_seen_subcommand_from schema" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand config; and __fish_seen_subcommand_from init" -s c -l config -d 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)' -r -F
complete -c dbkeep -n "__fish_dbkeep_using_subcommand config; and __fish_seen_subcommand_from init" -l log-format -d 'Log format on stderr: `text` for people, `json` (one object per line) for machines' -r -f -a "text\t'Human-readable lines (colored on a terminal)'
json\t'One JSON object per line'"
complete -c dbkeep -n "__fish_dbkeep_using_subcommand config; and __fish_seen_subcommand_from init" -l force -d 'Overwrite an existing file'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand config; and __fish_seen_subcommand_from init" -s v -l verbose -d 'More log output (-v: debug, -vv: trace)'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand config; and __fish_seen_subcommand_from init" -s q -l quiet -d 'Only warnings and errors on stderr'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand config; and __fish_seen_subcommand_from init" -l no-progress -d 'No progress display (a bar on a terminal, else a log line every 10 s)'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand config; and __fish_seen_subcommand_from init" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "validate" -d 'Check the config: report every problem with its YAML path (exit 78), then check tools, password files and storages (exit 1 on failure)'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "show" -d 'Print the effective config (file + DBKEEP_* env + defaults), secrets redacted'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "schema" -d 'Print the JSON Schema of the config file (for editors: yaml-language-server)'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "init" -d 'Write a commented starter config'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand notify; and not __fish_seen_subcommand_from test help" -s c -l config -d 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)' -r -F
complete -c dbkeep -n "__fish_dbkeep_using_subcommand notify; and not __fish_seen_subcommand_from test help" -l log-format -d 'Log format on stderr: `text` for people, `json` (one object per line) for machines' -r -f -a "text\t'Human-readable lines (colored on a terminal)'
json\t'One JSON object per line'"
complete -c dbkeep -n "__fish_dbkeep_using_subcommand notify; and not __fish_seen_subcommand_from test help" -s v -l verbose -d 'More log output (-v: debug, -vv: trace)'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand notify; and not __fish_seen_subcommand_from test help" -s q -l quiet -d 'Only warnings and errors on stderr'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand notify; and not __fish_seen_subcommand_from test help" -l no-progress -d 'No progress display (a bar on a terminal, else a log line every 10 s)'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand notify; and not __fish_seen_subcommand_from test help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand notify; and not __fish_seen_subcommand_from test help" -f -a "test" -d 'Send a test message through one notifier, or all of them'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand notify; and not __fish_seen_subcommand_from test help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand notify; and __fish_seen_subcommand_from test" -s c -l config -d 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)' -r -F
complete -c dbkeep -n "__fish_dbkeep_using_subcommand notify; and __fish_seen_subcommand_from test" -l log-format -d 'Log format on stderr: `text` for people, `json` (one object per line) for machines' -r -f -a "text\t'Human-readable lines (colored on a terminal)'
json\t'One JSON object per line'"
complete -c dbkeep -n "__fish_dbkeep_using_subcommand notify; and __fish_seen_subcommand_from test" -s v -l verbose -d 'More log output (-v: debug, -vv: trace)'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand notify; and __fish_seen_subcommand_from test" -s q -l quiet -d 'Only warnings and errors on stderr'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand notify; and __fish_seen_subcommand_from test" -l no-progress -d 'No progress display (a bar on a terminal, else a log line every 10 s)'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand notify; and __fish_seen_subcommand_from test" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand notify; and __fish_seen_subcommand_from help" -f -a "test" -d 'Send a test message through one notifier, or all of them'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand notify; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand wal; and not __fish_seen_subcommand_from push fetch prefetch help" -s c -l config -d 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)' -r -F
complete -c dbkeep -n "__fish_dbkeep_using_subcommand wal; and not __fish_seen_subcommand_from push fetch prefetch help" -l log-format -d 'Log format on stderr: `text` for people, `json` (one object per line) for machines' -r -f -a "text\t'Human-readable lines (colored on a terminal)'
json\t'One JSON object per line'"
complete -c dbkeep -n "__fish_dbkeep_using_subcommand wal; and not __fish_seen_subcommand_from push fetch prefetch help" -s v -l verbose -d 'More log output (-v: debug, -vv: trace)'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand wal; and not __fish_seen_subcommand_from push fetch prefetch help" -s q -l quiet -d 'Only warnings and errors on stderr'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand wal; and not __fish_seen_subcommand_from push fetch prefetch help" -l no-progress -d 'No progress display (a bar on a terminal, else a log line every 10 s)'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand wal; and not __fish_seen_subcommand_from push fetch prefetch help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand wal; and not __fish_seen_subcommand_from push fetch prefetch help" -f -a "push" -d 'Archive one WAL file into the job\'s storages (PostgreSQL\'s `archive_command`)'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand wal; and not __fish_seen_subcommand_from push fetch prefetch help" -f -a "fetch" -d 'Fetch one archived WAL file (PostgreSQL\'s `restore_command`)'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand wal; and not __fish_seen_subcommand_from push fetch prefetch help" -f -a "prefetch" -d 'Fetch WAL segments ahead into a spool folder (started by `wal fetch`)'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand wal; and not __fish_seen_subcommand_from push fetch prefetch help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand wal; and __fish_seen_subcommand_from push" -s c -l config -d 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)' -r -F
complete -c dbkeep -n "__fish_dbkeep_using_subcommand wal; and __fish_seen_subcommand_from push" -l log-format -d 'Log format on stderr: `text` for people, `json` (one object per line) for machines' -r -f -a "text\t'Human-readable lines (colored on a terminal)'
json\t'One JSON object per line'"
complete -c dbkeep -n "__fish_dbkeep_using_subcommand wal; and __fish_seen_subcommand_from push" -s v -l verbose -d 'More log output (-v: debug, -vv: trace)'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand wal; and __fish_seen_subcommand_from push" -s q -l quiet -d 'Only warnings and errors on stderr'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand wal; and __fish_seen_subcommand_from push" -l no-progress -d 'No progress display (a bar on a terminal, else a log line every 10 s)'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand wal; and __fish_seen_subcommand_from push" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand wal; and __fish_seen_subcommand_from fetch" -l identity -d 'age identity file (private keys) for an encrypted backup; may be repeated' -r -F
complete -c dbkeep -n "__fish_dbkeep_using_subcommand wal; and __fish_seen_subcommand_from fetch" -l passphrase-file -d 'File whose first line is the passphrase of a passphrase-encrypted backup (else DBKEEP_AGE_PASSPHRASE, else the job\'s `passphrase_file`)' -r -F
complete -c dbkeep -n "__fish_dbkeep_using_subcommand wal; and __fish_seen_subcommand_from fetch" -s c -l config -d 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)' -r -F
complete -c dbkeep -n "__fish_dbkeep_using_subcommand wal; and __fish_seen_subcommand_from fetch" -l log-format -d 'Log format on stderr: `text` for people, `json` (one object per line) for machines' -r -f -a "text\t'Human-readable lines (colored on a terminal)'
json\t'One JSON object per line'"
complete -c dbkeep -n "__fish_dbkeep_using_subcommand wal; and __fish_seen_subcommand_from fetch" -s v -l verbose -d 'More log output (-v: debug, -vv: trace)'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand wal; and __fish_seen_subcommand_from fetch" -s q -l quiet -d 'Only warnings and errors on stderr'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand wal; and __fish_seen_subcommand_from fetch" -l no-progress -d 'No progress display (a bar on a terminal, else a log line every 10 s)'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand wal; and __fish_seen_subcommand_from fetch" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand wal; and __fish_seen_subcommand_from prefetch" -l spool -d 'The spool folder' -r -F
complete -c dbkeep -n "__fish_dbkeep_using_subcommand wal; and __fish_seen_subcommand_from prefetch" -s c -l config -d 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)' -r -F
complete -c dbkeep -n "__fish_dbkeep_using_subcommand wal; and __fish_seen_subcommand_from prefetch" -l log-format -d 'Log format on stderr: `text` for people, `json` (one object per line) for machines' -r -f -a "text\t'Human-readable lines (colored on a terminal)'
json\t'One JSON object per line'"
complete -c dbkeep -n "__fish_dbkeep_using_subcommand wal; and __fish_seen_subcommand_from prefetch" -s v -l verbose -d 'More log output (-v: debug, -vv: trace)'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand wal; and __fish_seen_subcommand_from prefetch" -s q -l quiet -d 'Only warnings and errors on stderr'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand wal; and __fish_seen_subcommand_from prefetch" -l no-progress -d 'No progress display (a bar on a terminal, else a log line every 10 s)'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand wal; and __fish_seen_subcommand_from prefetch" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand wal; and __fish_seen_subcommand_from help" -f -a "push" -d 'Archive one WAL file into the job\'s storages (PostgreSQL\'s `archive_command`)'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand wal; and __fish_seen_subcommand_from help" -f -a "fetch" -d 'Fetch one archived WAL file (PostgreSQL\'s `restore_command`)'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand wal; and __fish_seen_subcommand_from help" -f -a "prefetch" -d 'Fetch WAL segments ahead into a spool folder (started by `wal fetch`)'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand wal; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand binlog; and not __fish_seen_subcommand_from pull help" -s c -l config -d 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)' -r -F
complete -c dbkeep -n "__fish_dbkeep_using_subcommand binlog; and not __fish_seen_subcommand_from pull help" -l log-format -d 'Log format on stderr: `text` for people, `json` (one object per line) for machines' -r -f -a "text\t'Human-readable lines (colored on a terminal)'
json\t'One JSON object per line'"
complete -c dbkeep -n "__fish_dbkeep_using_subcommand binlog; and not __fish_seen_subcommand_from pull help" -s v -l verbose -d 'More log output (-v: debug, -vv: trace)'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand binlog; and not __fish_seen_subcommand_from pull help" -s q -l quiet -d 'Only warnings and errors on stderr'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand binlog; and not __fish_seen_subcommand_from pull help" -l no-progress -d 'No progress display (a bar on a terminal, else a log line every 10 s)'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand binlog; and not __fish_seen_subcommand_from pull help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand binlog; and not __fish_seen_subcommand_from pull help" -f -a "pull" -d 'Archive every closed binlog file the job\'s storages lack'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand binlog; and not __fish_seen_subcommand_from pull help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand binlog; and __fish_seen_subcommand_from pull" -s c -l config -d 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)' -r -F
complete -c dbkeep -n "__fish_dbkeep_using_subcommand binlog; and __fish_seen_subcommand_from pull" -l log-format -d 'Log format on stderr: `text` for people, `json` (one object per line) for machines' -r -f -a "text\t'Human-readable lines (colored on a terminal)'
json\t'One JSON object per line'"
complete -c dbkeep -n "__fish_dbkeep_using_subcommand binlog; and __fish_seen_subcommand_from pull" -l no-rotate -d 'Do not close the server\'s current binlog first'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand binlog; and __fish_seen_subcommand_from pull" -s v -l verbose -d 'More log output (-v: debug, -vv: trace)'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand binlog; and __fish_seen_subcommand_from pull" -s q -l quiet -d 'Only warnings and errors on stderr'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand binlog; and __fish_seen_subcommand_from pull" -l no-progress -d 'No progress display (a bar on a terminal, else a log line every 10 s)'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand binlog; and __fish_seen_subcommand_from pull" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand binlog; and __fish_seen_subcommand_from help" -f -a "pull" -d 'Archive every closed binlog file the job\'s storages lack'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand binlog; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand generate" -l out -d 'Folder to write `man/` and `completions/` into' -r -F
complete -c dbkeep -n "__fish_dbkeep_using_subcommand generate" -s c -l config -d 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)' -r -F
complete -c dbkeep -n "__fish_dbkeep_using_subcommand generate" -l log-format -d 'Log format on stderr: `text` for people, `json` (one object per line) for machines' -r -f -a "text\t'Human-readable lines (colored on a terminal)'
json\t'One JSON object per line'"
complete -c dbkeep -n "__fish_dbkeep_using_subcommand generate" -s v -l verbose -d 'More log output (-v: debug, -vv: trace)'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand generate" -s q -l quiet -d 'Only warnings and errors on stderr'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand generate" -l no-progress -d 'No progress display (a bar on a terminal, else a log line every 10 s)'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand generate" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand demo" -l dir -d 'Folder for the sample database and the restored copy' -r -F
complete -c dbkeep -n "__fish_dbkeep_using_subcommand demo" -l to -d 'Folder the backup is stored in' -r
complete -c dbkeep -n "__fish_dbkeep_using_subcommand demo" -s c -l config -d 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)' -r -F
complete -c dbkeep -n "__fish_dbkeep_using_subcommand demo" -l log-format -d 'Log format on stderr: `text` for people, `json` (one object per line) for machines' -r -f -a "text\t'Human-readable lines (colored on a terminal)'
json\t'One JSON object per line'"
complete -c dbkeep -n "__fish_dbkeep_using_subcommand demo" -s v -l verbose -d 'More log output (-v: debug, -vv: trace)'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand demo" -s q -l quiet -d 'Only warnings and errors on stderr'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand demo" -l no-progress -d 'No progress display (a bar on a terminal, else a log line every 10 s)'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand demo" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand help; and not __fish_seen_subcommand_from backup restore list verify inspect prune schedule config notify wal binlog generate demo help" -f -a "backup" -d 'Back up the config\'s jobs, or one database URL with `--to DIR`'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand help; and not __fish_seen_subcommand_from backup restore list verify inspect prune schedule config notify wal binlog generate demo help" -f -a "restore" -d 'Restore a backup into a database'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand help; and not __fish_seen_subcommand_from backup restore list verify inspect prune schedule config notify wal binlog generate demo help" -f -a "list" -d 'List backups, newest first'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand help; and not __fish_seen_subcommand_from backup restore list verify inspect prune schedule config notify wal binlog generate demo help" -f -a "verify" -d 'Re-read a backup and check it against its manifest'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand help; and not __fish_seen_subcommand_from backup restore list verify inspect prune schedule config notify wal binlog generate demo help" -f -a "inspect" -d 'Show a source\'s server, client, TLS, databases and sizes, writing nothing'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand help; and not __fish_seen_subcommand_from backup restore list verify inspect prune schedule config notify wal binlog generate demo help" -f -a "prune" -d 'Delete old backups by the jobs\' retention rules'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand help; and not __fish_seen_subcommand_from backup restore list verify inspect prune schedule config notify wal binlog generate demo help" -f -a "schedule" -d 'Run jobs on their schedules, list fire times, or install timers'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand help; and not __fish_seen_subcommand_from backup restore list verify inspect prune schedule config notify wal binlog generate demo help" -f -a "config" -d 'Check, show or create the config file'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand help; and not __fish_seen_subcommand_from backup restore list verify inspect prune schedule config notify wal binlog generate demo help" -f -a "notify" -d 'Send test notifications'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand help; and not __fish_seen_subcommand_from backup restore list verify inspect prune schedule config notify wal binlog generate demo help" -f -a "wal" -d 'Archive and fetch PostgreSQL WAL (`archive_command`, `restore_command`)'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand help; and not __fish_seen_subcommand_from backup restore list verify inspect prune schedule config notify wal binlog generate demo help" -f -a "binlog" -d 'Archive MariaDB/MySQL binary logs for point-in-time recovery'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand help; and not __fish_seen_subcommand_from backup restore list verify inspect prune schedule config notify wal binlog generate demo help" -f -a "generate" -d 'Write man pages and shell completions (for packagers)'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand help; and not __fish_seen_subcommand_from backup restore list verify inspect prune schedule config notify wal binlog generate demo help" -f -a "demo" -d 'Try dbkeep: create a sample SQLite database, back it up to ./backups, restore it, and compare'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand help; and not __fish_seen_subcommand_from backup restore list verify inspect prune schedule config notify wal binlog generate demo help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand help; and __fish_seen_subcommand_from schedule" -f -a "run" -d 'Run every scheduled job at its times, in the foreground, until SIGTERM (for systemd `Type=simple` and containers). SIGHUP reloads the config'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand help; and __fish_seen_subcommand_from schedule" -f -a "list" -d 'Show each scheduled job\'s next fire times, in its time zone and in UTC'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand help; and __fish_seen_subcommand_from schedule" -f -a "install" -d 'Write a systemd service and timer, or crontab lines, for each scheduled job'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand help; and __fish_seen_subcommand_from config" -f -a "validate" -d 'Check the config: report every problem with its YAML path (exit 78), then check tools, password files and storages (exit 1 on failure)'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand help; and __fish_seen_subcommand_from config" -f -a "show" -d 'Print the effective config (file + DBKEEP_* env + defaults), secrets redacted'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand help; and __fish_seen_subcommand_from config" -f -a "schema" -d 'Print the JSON Schema of the config file (for editors: yaml-language-server)'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand help; and __fish_seen_subcommand_from config" -f -a "init" -d 'Write a commented starter config'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand help; and __fish_seen_subcommand_from notify" -f -a "test" -d 'Send a test message through one notifier, or all of them'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand help; and __fish_seen_subcommand_from wal" -f -a "push" -d 'Archive one WAL file into the job\'s storages (PostgreSQL\'s `archive_command`)'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand help; and __fish_seen_subcommand_from wal" -f -a "fetch" -d 'Fetch one archived WAL file (PostgreSQL\'s `restore_command`)'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand help; and __fish_seen_subcommand_from wal" -f -a "prefetch" -d 'Fetch WAL segments ahead into a spool folder (started by `wal fetch`)'
complete -c dbkeep -n "__fish_dbkeep_using_subcommand help; and __fish_seen_subcommand_from binlog" -f -a "pull" -d 'Archive every closed binlog file the job\'s storages lack'
