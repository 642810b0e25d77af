
using namespace System.Management.Automation
using namespace System.Management.Automation.Language

Register-ArgumentCompleter -Native -CommandName 'dbkeep' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $commandElements = $commandAst.CommandElements
    $command = @(
        'dbkeep'
        for ($i = 1; $i -lt $commandElements.Count; $i++) {
            $element = $commandElements[$i]
            if ($element -isnot [StringConstantExpressionAst] -or
                $element.StringConstantType -ne [StringConstantType]::BareWord -or
                $element.Value.StartsWith('-') -or
                $element.Value -eq $wordToComplete) {
                break
        }
        $element.Value
    }) -join ';'

    $completions = @(switch ($command) {
        'dbkeep' {
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log format on stderr: `text` for people, `json` (one object per line) for machines')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output (-v: debug, -vv: trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output (-v: debug, -vv: trace)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only warnings and errors on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only warnings and errors on stderr')
            [CompletionResult]::new('--no-progress', '--no-progress', [CompletionResultType]::ParameterName, 'No progress display (a bar on a terminal, else a log line every 10 s)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('backup', 'backup', [CompletionResultType]::ParameterValue, 'Back up the config''s jobs, or one database URL with `--to DIR`')
            [CompletionResult]::new('restore', 'restore', [CompletionResultType]::ParameterValue, 'Restore a backup into a database')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List backups, newest first')
            [CompletionResult]::new('verify', 'verify', [CompletionResultType]::ParameterValue, 'Re-read a backup and check it against its manifest')
            [CompletionResult]::new('inspect', 'inspect', [CompletionResultType]::ParameterValue, 'Show a source''s server, client, TLS, databases and sizes, writing nothing')
            [CompletionResult]::new('prune', 'prune', [CompletionResultType]::ParameterValue, 'Delete old backups by the jobs'' retention rules')
            [CompletionResult]::new('schedule', 'schedule', [CompletionResultType]::ParameterValue, 'Run jobs on their schedules, list fire times, or install timers')
            [CompletionResult]::new('config', 'config', [CompletionResultType]::ParameterValue, 'Check, show or create the config file')
            [CompletionResult]::new('notify', 'notify', [CompletionResultType]::ParameterValue, 'Send test notifications')
            [CompletionResult]::new('wal', 'wal', [CompletionResultType]::ParameterValue, 'Archive and fetch PostgreSQL WAL (`archive_command`, `restore_command`)')
            [CompletionResult]::new('binlog', 'binlog', [CompletionResultType]::ParameterValue, 'Archive MariaDB/MySQL binary logs for point-in-time recovery')
            [CompletionResult]::new('generate', 'generate', [CompletionResultType]::ParameterValue, 'Write man pages and shell completions (for packagers)')
            [CompletionResult]::new('demo', 'demo', [CompletionResultType]::ParameterValue, 'Try dbkeep: create a sample SQLite database, back it up to ./backups, restore it, and compare')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'dbkeep;backup' {
            [CompletionResult]::new('--to', '--to', [CompletionResultType]::ParameterName, 'One-off: store into this folder, with no config file')
            [CompletionResult]::new('--job', '--job', [CompletionResultType]::ParameterName, 'One-off: the job name to file the backup under (default: the database name)')
            [CompletionResult]::new('--compression', '--compression', [CompletionResultType]::ParameterName, 'Override the compression')
            [CompletionResult]::new('--level', '--level', [CompletionResultType]::ParameterName, 'Override the compression level')
            [CompletionResult]::new('--threads', '--threads', [CompletionResultType]::ParameterName, 'Override the zstd worker threads (0: one per core, at most 4)')
            [CompletionResult]::new('--jobs', '--jobs', [CompletionResultType]::ParameterName, 'Jobs to run at the same time (default: `defaults.concurrency`, else 1)')
            [CompletionResult]::new('--wait-lock', '--wait-lock', [CompletionResultType]::ParameterName, 'Wait this long for the job''s lock when another run holds it (e.g. `30m`), instead of failing at once with exit code 75')
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log format on stderr: `text` for people, `json` (one object per line) for machines')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON result per job on stdout')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output (-v: debug, -vv: trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output (-v: debug, -vv: trace)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only warnings and errors on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only warnings and errors on stderr')
            [CompletionResult]::new('--no-progress', '--no-progress', [CompletionResultType]::ParameterName, 'No progress display (a bar on a terminal, else a log line every 10 s)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'dbkeep;restore' {
            [CompletionResult]::new('--job', '--job', [CompletionResultType]::ParameterName, 'The job, when reading with `--from` (same as JOB)')
            [CompletionResult]::new('--from', '--from', [CompletionResultType]::ParameterName, 'Read backups from this folder, with no config file')
            [CompletionResult]::new('--storage', '--storage', [CompletionResultType]::ParameterName, 'Which storage of the job to read from (default: its first)')
            [CompletionResult]::new('--id', '--id', [CompletionResultType]::ParameterName, 'The backup id (or a unique prefix); default: the latest')
            [CompletionResult]::new('--before', '--before', [CompletionResultType]::ParameterName, 'The latest backup started before this time (RFC 3339 or `YYYY-MM-DD [HH:MM]`, UTC)')
            [CompletionResult]::new('--target', '--target', [CompletionResultType]::ParameterName, 'Where to restore: a database URL or SQLite path (default: the job''s source)')
            [CompletionResult]::new('--to-database', '--to-database', [CompletionResultType]::ParameterName, 'Restore into this database name instead')
            [CompletionResult]::new('--database', '--database', [CompletionResultType]::ParameterName, 'Only this database of a multi-database backup')
            [CompletionResult]::new('--data-dir', '--data-dir', [CompletionResultType]::ParameterName, 'PostgreSQL `method: physical`: restore the cluster into this new (or empty) data directory, set up to replay the job''s WAL archive')
            [CompletionResult]::new('--to-time', '--to-time', [CompletionResultType]::ParameterName, 'Recover to this time (RFC 3339, fractional seconds allowed, e.g. 2026-12-01T09:30:00.25Z): with `--data-dir`, replay the WAL archive to it and promote; for a `binlog: true` job, restore the last dump before it and replay the binlogs up to it')
            [CompletionResult]::new('--to-lsn', '--to-lsn', [CompletionResultType]::ParameterName, 'With `--data-dir`: recover to this WAL position (e.g. 0/3000028), then promote')
            [CompletionResult]::new('--to-xid', '--to-xid', [CompletionResultType]::ParameterName, 'With `--data-dir`: recover through this transaction id, then promote')
            [CompletionResult]::new('--identity', '--identity', [CompletionResultType]::ParameterName, 'age identity file (private keys) for an encrypted backup; may be repeated')
            [CompletionResult]::new('--passphrase-file', '--passphrase-file', [CompletionResultType]::ParameterName, 'File whose first line is the passphrase of a passphrase-encrypted backup (else DBKEEP_AGE_PASSPHRASE, else the job''s `passphrase_file`)')
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log format on stderr: `text` for people, `json` (one object per line) for machines')
            [CompletionResult]::new('--no-globals', '--no-globals', [CompletionResultType]::ParameterName, 'Skip PostgreSQL roles and tablespaces of a `databases: all` backup')
            [CompletionResult]::new('--no-owner', '--no-owner', [CompletionResultType]::ParameterName, 'PostgreSQL: do not restore object ownership')
            [CompletionResult]::new('--force', '--force', [CompletionResultType]::ParameterName, 'Restore into a target that is not empty, replacing the objects the backup holds')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output (-v: debug, -vv: trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output (-v: debug, -vv: trace)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only warnings and errors on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only warnings and errors on stderr')
            [CompletionResult]::new('--no-progress', '--no-progress', [CompletionResultType]::ParameterName, 'No progress display (a bar on a terminal, else a log line every 10 s)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'dbkeep;list' {
            [CompletionResult]::new('--from', '--from', [CompletionResultType]::ParameterName, 'Read backups from this folder, with no config file')
            [CompletionResult]::new('--storage', '--storage', [CompletionResultType]::ParameterName, 'Only this storage of the job (default: every storage in the config)')
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log format on stderr: `text` for people, `json` (one object per line) for machines')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print JSON on stdout')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output (-v: debug, -vv: trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output (-v: debug, -vv: trace)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only warnings and errors on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only warnings and errors on stderr')
            [CompletionResult]::new('--no-progress', '--no-progress', [CompletionResultType]::ParameterName, 'No progress display (a bar on a terminal, else a log line every 10 s)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'dbkeep;verify' {
            [CompletionResult]::new('--job', '--job', [CompletionResultType]::ParameterName, 'The job, when reading with `--from` (same as JOB)')
            [CompletionResult]::new('--from', '--from', [CompletionResultType]::ParameterName, 'Read backups from this folder, with no config file')
            [CompletionResult]::new('--storage', '--storage', [CompletionResultType]::ParameterName, 'Which storage of the job to read from (default: its first)')
            [CompletionResult]::new('--id', '--id', [CompletionResultType]::ParameterName, 'The backup id (or a unique prefix); default: the latest')
            [CompletionResult]::new('--identity', '--identity', [CompletionResultType]::ParameterName, 'age identity file (private keys) for an encrypted backup; may be repeated')
            [CompletionResult]::new('--passphrase-file', '--passphrase-file', [CompletionResultType]::ParameterName, 'File whose first line is the passphrase of a passphrase-encrypted backup (else DBKEEP_AGE_PASSPHRASE, else the job''s `passphrase_file`)')
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log format on stderr: `text` for people, `json` (one object per line) for machines')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print JSON on stdout')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output (-v: debug, -vv: trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output (-v: debug, -vv: trace)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only warnings and errors on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only warnings and errors on stderr')
            [CompletionResult]::new('--no-progress', '--no-progress', [CompletionResultType]::ParameterName, 'No progress display (a bar on a terminal, else a log line every 10 s)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'dbkeep;inspect' {
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log format on stderr: `text` for people, `json` (one object per line) for machines')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print JSON on stdout')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output (-v: debug, -vv: trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output (-v: debug, -vv: trace)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only warnings and errors on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only warnings and errors on stderr')
            [CompletionResult]::new('--no-progress', '--no-progress', [CompletionResultType]::ParameterName, 'No progress display (a bar on a terminal, else a log line every 10 s)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'dbkeep;prune' {
            [CompletionResult]::new('--wait-lock', '--wait-lock', [CompletionResultType]::ParameterName, 'Wait this long for the job''s lock when another run holds it')
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log format on stderr: `text` for people, `json` (one object per line) for machines')
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'Only show what would be deleted')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Only show what would be deleted')
            [CompletionResult]::new('--force', '--force', [CompletionResultType]::ParameterName, 'Delete even when the rules would delete more than half of a job''s backups (otherwise such a prune stops, in case a clock or a manifest is wrong)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print JSON on stdout')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output (-v: debug, -vv: trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output (-v: debug, -vv: trace)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only warnings and errors on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only warnings and errors on stderr')
            [CompletionResult]::new('--no-progress', '--no-progress', [CompletionResultType]::ParameterName, 'No progress display (a bar on a terminal, else a log line every 10 s)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'dbkeep;schedule' {
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log format on stderr: `text` for people, `json` (one object per line) for machines')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output (-v: debug, -vv: trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output (-v: debug, -vv: trace)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only warnings and errors on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only warnings and errors on stderr')
            [CompletionResult]::new('--no-progress', '--no-progress', [CompletionResultType]::ParameterName, 'No progress display (a bar on a terminal, else a log line every 10 s)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('run', 'run', [CompletionResultType]::ParameterValue, 'Run every scheduled job at its times, in the foreground, until SIGTERM (for systemd `Type=simple` and containers). SIGHUP reloads the config')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'Show each scheduled job''s next fire times, in its time zone and in UTC')
            [CompletionResult]::new('install', 'install', [CompletionResultType]::ParameterValue, 'Write a systemd service and timer, or crontab lines, for each scheduled job')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'dbkeep;schedule;run' {
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log format on stderr: `text` for people, `json` (one object per line) for machines')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output (-v: debug, -vv: trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output (-v: debug, -vv: trace)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only warnings and errors on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only warnings and errors on stderr')
            [CompletionResult]::new('--no-progress', '--no-progress', [CompletionResultType]::ParameterName, 'No progress display (a bar on a terminal, else a log line every 10 s)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'dbkeep;schedule;list' {
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'How many fire times per job')
            [CompletionResult]::new('--count', '--count', [CompletionResultType]::ParameterName, 'How many fire times per job')
            [CompletionResult]::new('--after', '--after', [CompletionResultType]::ParameterName, 'Fire times after this time instead of now (RFC 3339 or `YYYY-MM-DD [HH:MM]`, UTC)')
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log format on stderr: `text` for people, `json` (one object per line) for machines')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print JSON on stdout')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output (-v: debug, -vv: trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output (-v: debug, -vv: trace)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only warnings and errors on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only warnings and errors on stderr')
            [CompletionResult]::new('--no-progress', '--no-progress', [CompletionResultType]::ParameterName, 'No progress display (a bar on a terminal, else a log line every 10 s)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'dbkeep;schedule;install' {
            [CompletionResult]::new('--dir', '--dir', [CompletionResultType]::ParameterName, 'Write into this folder instead of the scheduler''s own')
            [CompletionResult]::new('--randomized-delay', '--randomized-delay', [CompletionResultType]::ParameterName, 'systemd: spread starts over up to this long (`RandomizedDelaySec=`)')
            [CompletionResult]::new('--binary', '--binary', [CompletionResultType]::ParameterName, 'The dbkeep binary the units run (default: this one)')
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log format on stderr: `text` for people, `json` (one object per line) for machines')
            [CompletionResult]::new('--systemd', '--systemd', [CompletionResultType]::ParameterName, 'Write systemd units')
            [CompletionResult]::new('--cron', '--cron', [CompletionResultType]::ParameterName, 'Write crontab lines')
            [CompletionResult]::new('--user', '--user', [CompletionResultType]::ParameterName, 'For the current user: systemd user units (~/.config/systemd/user), or lines for the user''s crontab')
            [CompletionResult]::new('--print', '--print', [CompletionResultType]::ParameterName, 'Print the files instead of writing them')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output (-v: debug, -vv: trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output (-v: debug, -vv: trace)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only warnings and errors on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only warnings and errors on stderr')
            [CompletionResult]::new('--no-progress', '--no-progress', [CompletionResultType]::ParameterName, 'No progress display (a bar on a terminal, else a log line every 10 s)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'dbkeep;schedule;help' {
            [CompletionResult]::new('run', 'run', [CompletionResultType]::ParameterValue, 'Run every scheduled job at its times, in the foreground, until SIGTERM (for systemd `Type=simple` and containers). SIGHUP reloads the config')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'Show each scheduled job''s next fire times, in its time zone and in UTC')
            [CompletionResult]::new('install', 'install', [CompletionResultType]::ParameterValue, 'Write a systemd service and timer, or crontab lines, for each scheduled job')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'dbkeep;schedule;help;run' {
            break
        }
        'dbkeep;schedule;help;list' {
            break
        }
        'dbkeep;schedule;help;install' {
            break
        }
        'dbkeep;schedule;help;help' {
            break
        }
        'dbkeep;config' {
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log format on stderr: `text` for people, `json` (one object per line) for machines')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output (-v: debug, -vv: trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output (-v: debug, -vv: trace)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only warnings and errors on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only warnings and errors on stderr')
            [CompletionResult]::new('--no-progress', '--no-progress', [CompletionResultType]::ParameterName, 'No progress display (a bar on a terminal, else a log line every 10 s)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('validate', 'validate', [CompletionResultType]::ParameterValue, 'Check the config: report every problem with its YAML path (exit 78), then check tools, password files and storages (exit 1 on failure)')
            [CompletionResult]::new('show', 'show', [CompletionResultType]::ParameterValue, 'Print the effective config (file + DBKEEP_* env + defaults), secrets redacted')
            [CompletionResult]::new('schema', 'schema', [CompletionResultType]::ParameterValue, 'Print the JSON Schema of the config file (for editors: yaml-language-server)')
            [CompletionResult]::new('init', 'init', [CompletionResultType]::ParameterValue, 'Write a commented starter config')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'dbkeep;config;validate' {
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log format on stderr: `text` for people, `json` (one object per line) for machines')
            [CompletionResult]::new('--no-environment', '--no-environment', [CompletionResultType]::ParameterName, 'Only check the file; do not look for tools or touch storages')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output (-v: debug, -vv: trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output (-v: debug, -vv: trace)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only warnings and errors on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only warnings and errors on stderr')
            [CompletionResult]::new('--no-progress', '--no-progress', [CompletionResultType]::ParameterName, 'No progress display (a bar on a terminal, else a log line every 10 s)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'dbkeep;config;show' {
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log format on stderr: `text` for people, `json` (one object per line) for machines')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output (-v: debug, -vv: trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output (-v: debug, -vv: trace)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only warnings and errors on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only warnings and errors on stderr')
            [CompletionResult]::new('--no-progress', '--no-progress', [CompletionResultType]::ParameterName, 'No progress display (a bar on a terminal, else a log line every 10 s)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'dbkeep;config;schema' {
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log format on stderr: `text` for people, `json` (one object per line) for machines')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output (-v: debug, -vv: trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output (-v: debug, -vv: trace)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only warnings and errors on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only warnings and errors on stderr')
            [CompletionResult]::new('--no-progress', '--no-progress', [CompletionResultType]::ParameterName, 'No progress display (a bar on a terminal, else a log line every 10 s)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'dbkeep;config;init' {
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log format on stderr: `text` for people, `json` (one object per line) for machines')
            [CompletionResult]::new('--force', '--force', [CompletionResultType]::ParameterName, 'Overwrite an existing file')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output (-v: debug, -vv: trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output (-v: debug, -vv: trace)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only warnings and errors on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only warnings and errors on stderr')
            [CompletionResult]::new('--no-progress', '--no-progress', [CompletionResultType]::ParameterName, 'No progress display (a bar on a terminal, else a log line every 10 s)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'dbkeep;config;help' {
            [CompletionResult]::new('validate', 'validate', [CompletionResultType]::ParameterValue, 'Check the config: report every problem with its YAML path (exit 78), then check tools, password files and storages (exit 1 on failure)')
            [CompletionResult]::new('show', 'show', [CompletionResultType]::ParameterValue, 'Print the effective config (file + DBKEEP_* env + defaults), secrets redacted')
            [CompletionResult]::new('schema', 'schema', [CompletionResultType]::ParameterValue, 'Print the JSON Schema of the config file (for editors: yaml-language-server)')
            [CompletionResult]::new('init', 'init', [CompletionResultType]::ParameterValue, 'Write a commented starter config')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'dbkeep;config;help;validate' {
            break
        }
        'dbkeep;config;help;show' {
            break
        }
        'dbkeep;config;help;schema' {
            break
        }
        'dbkeep;config;help;init' {
            break
        }
        'dbkeep;config;help;help' {
            break
        }
        'dbkeep;notify' {
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log format on stderr: `text` for people, `json` (one object per line) for machines')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output (-v: debug, -vv: trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output (-v: debug, -vv: trace)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only warnings and errors on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only warnings and errors on stderr')
            [CompletionResult]::new('--no-progress', '--no-progress', [CompletionResultType]::ParameterName, 'No progress display (a bar on a terminal, else a log line every 10 s)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('test', 'test', [CompletionResultType]::ParameterValue, 'Send a test message through one notifier, or all of them')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'dbkeep;notify;test' {
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log format on stderr: `text` for people, `json` (one object per line) for machines')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output (-v: debug, -vv: trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output (-v: debug, -vv: trace)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only warnings and errors on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only warnings and errors on stderr')
            [CompletionResult]::new('--no-progress', '--no-progress', [CompletionResultType]::ParameterName, 'No progress display (a bar on a terminal, else a log line every 10 s)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'dbkeep;notify;help' {
            [CompletionResult]::new('test', 'test', [CompletionResultType]::ParameterValue, 'Send a test message through one notifier, or all of them')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'dbkeep;notify;help;test' {
            break
        }
        'dbkeep;notify;help;help' {
            break
        }
        'dbkeep;wal' {
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log format on stderr: `text` for people, `json` (one object per line) for machines')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output (-v: debug, -vv: trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output (-v: debug, -vv: trace)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only warnings and errors on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only warnings and errors on stderr')
            [CompletionResult]::new('--no-progress', '--no-progress', [CompletionResultType]::ParameterName, 'No progress display (a bar on a terminal, else a log line every 10 s)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('push', 'push', [CompletionResultType]::ParameterValue, 'Archive one WAL file into the job''s storages (PostgreSQL''s `archive_command`)')
            [CompletionResult]::new('fetch', 'fetch', [CompletionResultType]::ParameterValue, 'Fetch one archived WAL file (PostgreSQL''s `restore_command`)')
            [CompletionResult]::new('prefetch', 'prefetch', [CompletionResultType]::ParameterValue, 'Fetch WAL segments ahead into a spool folder (started by `wal fetch`)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'dbkeep;wal;push' {
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log format on stderr: `text` for people, `json` (one object per line) for machines')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output (-v: debug, -vv: trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output (-v: debug, -vv: trace)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only warnings and errors on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only warnings and errors on stderr')
            [CompletionResult]::new('--no-progress', '--no-progress', [CompletionResultType]::ParameterName, 'No progress display (a bar on a terminal, else a log line every 10 s)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'dbkeep;wal;fetch' {
            [CompletionResult]::new('--identity', '--identity', [CompletionResultType]::ParameterName, 'age identity file (private keys) for an encrypted backup; may be repeated')
            [CompletionResult]::new('--passphrase-file', '--passphrase-file', [CompletionResultType]::ParameterName, 'File whose first line is the passphrase of a passphrase-encrypted backup (else DBKEEP_AGE_PASSPHRASE, else the job''s `passphrase_file`)')
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log format on stderr: `text` for people, `json` (one object per line) for machines')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output (-v: debug, -vv: trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output (-v: debug, -vv: trace)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only warnings and errors on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only warnings and errors on stderr')
            [CompletionResult]::new('--no-progress', '--no-progress', [CompletionResultType]::ParameterName, 'No progress display (a bar on a terminal, else a log line every 10 s)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'dbkeep;wal;prefetch' {
            [CompletionResult]::new('--spool', '--spool', [CompletionResultType]::ParameterName, 'The spool folder')
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log format on stderr: `text` for people, `json` (one object per line) for machines')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output (-v: debug, -vv: trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output (-v: debug, -vv: trace)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only warnings and errors on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only warnings and errors on stderr')
            [CompletionResult]::new('--no-progress', '--no-progress', [CompletionResultType]::ParameterName, 'No progress display (a bar on a terminal, else a log line every 10 s)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'dbkeep;wal;help' {
            [CompletionResult]::new('push', 'push', [CompletionResultType]::ParameterValue, 'Archive one WAL file into the job''s storages (PostgreSQL''s `archive_command`)')
            [CompletionResult]::new('fetch', 'fetch', [CompletionResultType]::ParameterValue, 'Fetch one archived WAL file (PostgreSQL''s `restore_command`)')
            [CompletionResult]::new('prefetch', 'prefetch', [CompletionResultType]::ParameterValue, 'Fetch WAL segments ahead into a spool folder (started by `wal fetch`)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'dbkeep;wal;help;push' {
            break
        }
        'dbkeep;wal;help;fetch' {
            break
        }
        'dbkeep;wal;help;prefetch' {
            break
        }
        'dbkeep;wal;help;help' {
            break
        }
        'dbkeep;binlog' {
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log format on stderr: `text` for people, `json` (one object per line) for machines')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output (-v: debug, -vv: trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output (-v: debug, -vv: trace)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only warnings and errors on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only warnings and errors on stderr')
            [CompletionResult]::new('--no-progress', '--no-progress', [CompletionResultType]::ParameterName, 'No progress display (a bar on a terminal, else a log line every 10 s)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('pull', 'pull', [CompletionResultType]::ParameterValue, 'Archive every closed binlog file the job''s storages lack')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'dbkeep;binlog;pull' {
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log format on stderr: `text` for people, `json` (one object per line) for machines')
            [CompletionResult]::new('--no-rotate', '--no-rotate', [CompletionResultType]::ParameterName, 'Do not close the server''s current binlog first')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output (-v: debug, -vv: trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output (-v: debug, -vv: trace)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only warnings and errors on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only warnings and errors on stderr')
            [CompletionResult]::new('--no-progress', '--no-progress', [CompletionResultType]::ParameterName, 'No progress display (a bar on a terminal, else a log line every 10 s)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'dbkeep;binlog;help' {
            [CompletionResult]::new('pull', 'pull', [CompletionResultType]::ParameterValue, 'Archive every closed binlog file the job''s storages lack')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'dbkeep;binlog;help;pull' {
            break
        }
        'dbkeep;binlog;help;help' {
            break
        }
        'dbkeep;generate' {
            [CompletionResult]::new('--out', '--out', [CompletionResultType]::ParameterName, 'Folder to write `man/` and `completions/` into')
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log format on stderr: `text` for people, `json` (one object per line) for machines')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output (-v: debug, -vv: trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output (-v: debug, -vv: trace)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only warnings and errors on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only warnings and errors on stderr')
            [CompletionResult]::new('--no-progress', '--no-progress', [CompletionResultType]::ParameterName, 'No progress display (a bar on a terminal, else a log line every 10 s)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'dbkeep;demo' {
            [CompletionResult]::new('--dir', '--dir', [CompletionResultType]::ParameterName, 'Folder for the sample database and the restored copy')
            [CompletionResult]::new('--to', '--to', [CompletionResultType]::ParameterName, 'Folder the backup is stored in')
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log format on stderr: `text` for people, `json` (one object per line) for machines')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More log output (-v: debug, -vv: trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More log output (-v: debug, -vv: trace)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only warnings and errors on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only warnings and errors on stderr')
            [CompletionResult]::new('--no-progress', '--no-progress', [CompletionResultType]::ParameterName, 'No progress display (a bar on a terminal, else a log line every 10 s)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'dbkeep;help' {
            [CompletionResult]::new('backup', 'backup', [CompletionResultType]::ParameterValue, 'Back up the config''s jobs, or one database URL with `--to DIR`')
            [CompletionResult]::new('restore', 'restore', [CompletionResultType]::ParameterValue, 'Restore a backup into a database')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List backups, newest first')
            [CompletionResult]::new('verify', 'verify', [CompletionResultType]::ParameterValue, 'Re-read a backup and check it against its manifest')
            [CompletionResult]::new('inspect', 'inspect', [CompletionResultType]::ParameterValue, 'Show a source''s server, client, TLS, databases and sizes, writing nothing')
            [CompletionResult]::new('prune', 'prune', [CompletionResultType]::ParameterValue, 'Delete old backups by the jobs'' retention rules')
            [CompletionResult]::new('schedule', 'schedule', [CompletionResultType]::ParameterValue, 'Run jobs on their schedules, list fire times, or install timers')
            [CompletionResult]::new('config', 'config', [CompletionResultType]::ParameterValue, 'Check, show or create the config file')
            [CompletionResult]::new('notify', 'notify', [CompletionResultType]::ParameterValue, 'Send test notifications')
            [CompletionResult]::new('wal', 'wal', [CompletionResultType]::ParameterValue, 'Archive and fetch PostgreSQL WAL (`archive_command`, `restore_command`)')
            [CompletionResult]::new('binlog', 'binlog', [CompletionResultType]::ParameterValue, 'Archive MariaDB/MySQL binary logs for point-in-time recovery')
            [CompletionResult]::new('generate', 'generate', [CompletionResultType]::ParameterValue, 'Write man pages and shell completions (for packagers)')
            [CompletionResult]::new('demo', 'demo', [CompletionResultType]::ParameterValue, 'Try dbkeep: create a sample SQLite database, back it up to ./backups, restore it, and compare')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'dbkeep;help;backup' {
            break
        }
        'dbkeep;help;restore' {
            break
        }
        'dbkeep;help;list' {
            break
        }
        'dbkeep;help;verify' {
            break
        }
        'dbkeep;help;inspect' {
            break
        }
        'dbkeep;help;prune' {
            break
        }
        'dbkeep;help;schedule' {
            [CompletionResult]::new('run', 'run', [CompletionResultType]::ParameterValue, 'Run every scheduled job at its times, in the foreground, until SIGTERM (for systemd `Type=simple` and containers). SIGHUP reloads the config')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'Show each scheduled job''s next fire times, in its time zone and in UTC')
            [CompletionResult]::new('install', 'install', [CompletionResultType]::ParameterValue, 'Write a systemd service and timer, or crontab lines, for each scheduled job')
            break
        }
        'dbkeep;help;schedule;run' {
            break
        }
        'dbkeep;help;schedule;list' {
            break
        }
        'dbkeep;help;schedule;install' {
            break
        }
        'dbkeep;help;config' {
            [CompletionResult]::new('validate', 'validate', [CompletionResultType]::ParameterValue, 'Check the config: report every problem with its YAML path (exit 78), then check tools, password files and storages (exit 1 on failure)')
            [CompletionResult]::new('show', 'show', [CompletionResultType]::ParameterValue, 'Print the effective config (file + DBKEEP_* env + defaults), secrets redacted')
            [CompletionResult]::new('schema', 'schema', [CompletionResultType]::ParameterValue, 'Print the JSON Schema of the config file (for editors: yaml-language-server)')
            [CompletionResult]::new('init', 'init', [CompletionResultType]::ParameterValue, 'Write a commented starter config')
            break
        }
        'dbkeep;help;config;validate' {
            break
        }
        'dbkeep;help;config;show' {
            break
        }
        'dbkeep;help;config;schema' {
            break
        }
        'dbkeep;help;config;init' {
            break
        }
        'dbkeep;help;notify' {
            [CompletionResult]::new('test', 'test', [CompletionResultType]::ParameterValue, 'Send a test message through one notifier, or all of them')
            break
        }
        'dbkeep;help;notify;test' {
            break
        }
        'dbkeep;help;wal' {
            [CompletionResult]::new('push', 'push', [CompletionResultType]::ParameterValue, 'Archive one WAL file into the job''s storages (PostgreSQL''s `archive_command`)')
            [CompletionResult]::new('fetch', 'fetch', [CompletionResultType]::ParameterValue, 'Fetch one archived WAL file (PostgreSQL''s `restore_command`)')
            [CompletionResult]::new('prefetch', 'prefetch', [CompletionResultType]::ParameterValue, 'Fetch WAL segments ahead into a spool folder (started by `wal fetch`)')
            break
        }
        'dbkeep;help;wal;push' {
            break
        }
        'dbkeep;help;wal;fetch' {
            break
        }
        'dbkeep;help;wal;prefetch' {
            break
        }
        'dbkeep;help;binlog' {
            [CompletionResult]::new('pull', 'pull', [CompletionResultType]::ParameterValue, 'Archive every closed binlog file the job''s storages lack')
            break
        }
        'dbkeep;help;binlog;pull' {
            break
        }
        'dbkeep;help;generate' {
            break
        }
        'dbkeep;help;demo' {
            break
        }
        'dbkeep;help;help' {
            break
        }
    })

    $completions.Where{ $_.CompletionText -like "$wordToComplete*" } |
        Sort-Object -Property ListItemText
}
