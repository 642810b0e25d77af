
use builtin;
use str;

set edit:completion:arg-completer[dbkeep] = {|@words|
    fn spaces {|n|
        builtin:repeat $n ' ' | str:join ''
    }
    fn cand {|text desc|
        edit:complex-candidate $text &display=$text' '(spaces (- 14 (wcswidth $text)))$desc
    }
    var command = 'dbkeep'
    for word $words[1..-1] {
        if (str:has-prefix $word '-') {
            break
        }
        set command = $command';'$word
    }
    var completions = [
        &'dbkeep'= {
            cand -c 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)'
            cand --config 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)'
            cand --log-format 'Log format on stderr: `text` for people, `json` (one object per line) for machines'
            cand -v 'More log output (-v: debug, -vv: trace)'
            cand --verbose 'More log output (-v: debug, -vv: trace)'
            cand -q 'Only warnings and errors on stderr'
            cand --quiet 'Only warnings and errors on stderr'
            cand --no-progress 'No progress display (a bar on a terminal, else a log line every 10 s)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
            cand backup 'Back up the config''s jobs, or one database URL with `--to DIR`'
            cand restore 'Restore a backup into a database'
            cand list 'List backups, newest first'
            cand verify 'Re-read a backup and check it against its manifest'
            cand inspect 'Show a source''s server, client, TLS, databases and sizes, writing nothing'
            cand prune 'Delete old backups by the jobs'' retention rules'
            cand schedule 'Run jobs on their schedules, list fire times, or install timers'
            cand config 'Check, show or create the config file'
            cand notify 'Send test notifications'
            cand wal 'Archive and fetch PostgreSQL WAL (`archive_command`, `restore_command`)'
            cand binlog 'Archive MariaDB/MySQL binary logs for point-in-time recovery'
            cand generate 'Write man pages and shell completions (for packagers)'
            cand demo 'Try dbkeep: create a sample SQLite database, back it up to ./backups, restore it, and compare'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'dbkeep;backup'= {
            cand --to 'One-off: store into this folder, with no config file'
            cand --job 'One-off: the job name to file the backup under (default: the database name)'
            cand --compression 'Override the compression'
            cand --level 'Override the compression level'
            cand --threads 'Override the zstd worker threads (0: one per core, at most 4)'
            cand --jobs 'Jobs to run at the same time (default: `defaults.concurrency`, else 1)'
            cand --wait-lock 'Wait this long for the job''s lock when another run holds it (e.g. `30m`), instead of failing at once with exit code 75'
            cand -c 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)'
            cand --config 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)'
            cand --log-format 'Log format on stderr: `text` for people, `json` (one object per line) for machines'
            cand --json 'Print one JSON result per job on stdout'
            cand -v 'More log output (-v: debug, -vv: trace)'
            cand --verbose 'More log output (-v: debug, -vv: trace)'
            cand -q 'Only warnings and errors on stderr'
            cand --quiet 'Only warnings and errors on stderr'
            cand --no-progress 'No progress display (a bar on a terminal, else a log line every 10 s)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'dbkeep;restore'= {
            cand --job 'The job, when reading with `--from` (same as JOB)'
            cand --from 'Read backups from this folder, with no config file'
            cand --storage 'Which storage of the job to read from (default: its first)'
            cand --id 'The backup id (or a unique prefix); default: the latest'
            cand --before 'The latest backup started before this time (RFC 3339 or `YYYY-MM-DD [HH:MM]`, UTC)'
            cand --target 'Where to restore: a database URL or SQLite path (default: the job''s source)'
            cand --to-database 'Restore into this database name instead'
            cand --database 'Only this database of a multi-database backup'
            cand --data-dir 'PostgreSQL `method: physical`: restore the cluster into this new (or empty) data directory, set up to replay the job''s WAL archive'
            cand --to-time 'Recover to this time (RFC 3339, fractional seconds allowed, e.g. 2026-12-01T09:30:00.25Z): with `--data-dir`, replay the WAL archive to it and promote; for a `binlog: true` job, restore the last dump before it and replay the binlogs up to it'
            cand --to-lsn 'With `--data-dir`: recover to this WAL position (e.g. 0/3000028), then promote'
            cand --to-xid 'With `--data-dir`: recover through this transaction id, then promote'
            cand --identity 'age identity file (private keys) for an encrypted backup; may be repeated'
            cand --passphrase-file 'File whose first line is the passphrase of a passphrase-encrypted backup (else DBKEEP_AGE_PASSPHRASE, else the job''s `passphrase_file`)'
            cand -c 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)'
            cand --config 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)'
            cand --log-format 'Log format on stderr: `text` for people, `json` (one object per line) for machines'
            cand --no-globals 'Skip PostgreSQL roles and tablespaces of a `databases: all` backup'
            cand --no-owner 'PostgreSQL: do not restore object ownership'
            cand --force 'Restore into a target that is not empty, replacing the objects the backup holds'
            cand -v 'More log output (-v: debug, -vv: trace)'
            cand --verbose 'More log output (-v: debug, -vv: trace)'
            cand -q 'Only warnings and errors on stderr'
            cand --quiet 'Only warnings and errors on stderr'
            cand --no-progress 'No progress display (a bar on a terminal, else a log line every 10 s)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'dbkeep;list'= {
            cand --from 'Read backups from this folder, with no config file'
            cand --storage 'Only this storage of the job (default: every storage in the config)'
            cand -c 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)'
            cand --config 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)'
            cand --log-format 'Log format on stderr: `text` for people, `json` (one object per line) for machines'
            cand --json 'Print JSON on stdout'
            cand -v 'More log output (-v: debug, -vv: trace)'
            cand --verbose 'More log output (-v: debug, -vv: trace)'
            cand -q 'Only warnings and errors on stderr'
            cand --quiet 'Only warnings and errors on stderr'
            cand --no-progress 'No progress display (a bar on a terminal, else a log line every 10 s)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'dbkeep;verify'= {
            cand --job 'The job, when reading with `--from` (same as JOB)'
            cand --from 'Read backups from this folder, with no config file'
            cand --storage 'Which storage of the job to read from (default: its first)'
            cand --id 'The backup id (or a unique prefix); default: the latest'
            cand --identity 'age identity file (private keys) for an encrypted backup; may be repeated'
            cand --passphrase-file 'File whose first line is the passphrase of a passphrase-encrypted backup (else DBKEEP_AGE_PASSPHRASE, else the job''s `passphrase_file`)'
            cand -c 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)'
            cand --config 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)'
            cand --log-format 'Log format on stderr: `text` for people, `json` (one object per line) for machines'
            cand --json 'Print JSON on stdout'
            cand -v 'More log output (-v: debug, -vv: trace)'
            cand --verbose 'More log output (-v: debug, -vv: trace)'
            cand -q 'Only warnings and errors on stderr'
            cand --quiet 'Only warnings and errors on stderr'
            cand --no-progress 'No progress display (a bar on a terminal, else a log line every 10 s)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'dbkeep;inspect'= {
            cand -c 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)'
            cand --config 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)'
            cand --log-format 'Log format on stderr: `text` for people, `json` (one object per line) for machines'
            cand --json 'Print JSON on stdout'
            cand -v 'More log output (-v: debug, -vv: trace)'
            cand --verbose 'More log output (-v: debug, -vv: trace)'
            cand -q 'Only warnings and errors on stderr'
            cand --quiet 'Only warnings and errors on stderr'
            cand --no-progress 'No progress display (a bar on a terminal, else a log line every 10 s)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'dbkeep;prune'= {
            cand --wait-lock 'Wait this long for the job''s lock when another run holds it'
            cand -c 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)'
            cand --config 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)'
            cand --log-format 'Log format on stderr: `text` for people, `json` (one object per line) for machines'
            cand -n 'Only show what would be deleted'
            cand --dry-run 'Only show what would be deleted'
            cand --force 'Delete even when the rules would delete more than half of a job''s backups (otherwise such a prune stops, in case a clock or a manifest is wrong)'
            cand --json 'Print JSON on stdout'
            cand -v 'More log output (-v: debug, -vv: trace)'
            cand --verbose 'More log output (-v: debug, -vv: trace)'
            cand -q 'Only warnings and errors on stderr'
            cand --quiet 'Only warnings and errors on stderr'
            cand --no-progress 'No progress display (a bar on a terminal, else a log line every 10 s)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'dbkeep;schedule'= {
            cand -c 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)'
            cand --config 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)'
            cand --log-format 'Log format on stderr: `text` for people, `json` (one object per line) for machines'
            cand -v 'More log output (-v: debug, -vv: trace)'
            cand --verbose 'More log output (-v: debug, -vv: trace)'
            cand -q 'Only warnings and errors on stderr'
            cand --quiet 'Only warnings and errors on stderr'
            cand --no-progress 'No progress display (a bar on a terminal, else a log line every 10 s)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand run 'Run every scheduled job at its times, in the foreground, until SIGTERM (for systemd `Type=simple` and containers). SIGHUP reloads the config'
            cand list 'Show each scheduled job''s next fire times, in its time zone and in UTC'
            cand install 'Write a systemd service and timer, or crontab lines, for each scheduled job'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'dbkeep;schedule;run'= {
            cand -c 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)'
            cand --config 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)'
            cand --log-format 'Log format on stderr: `text` for people, `json` (one object per line) for machines'
            cand -v 'More log output (-v: debug, -vv: trace)'
            cand --verbose 'More log output (-v: debug, -vv: trace)'
            cand -q 'Only warnings and errors on stderr'
            cand --quiet 'Only warnings and errors on stderr'
            cand --no-progress 'No progress display (a bar on a terminal, else a log line every 10 s)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'dbkeep;schedule;list'= {
            cand -n 'How many fire times per job'
            cand --count 'How many fire times per job'
            cand --after 'Fire times after this time instead of now (RFC 3339 or `YYYY-MM-DD [HH:MM]`, UTC)'
            cand -c 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)'
            cand --config 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)'
            cand --log-format 'Log format on stderr: `text` for people, `json` (one object per line) for machines'
            cand --json 'Print JSON on stdout'
            cand -v 'More log output (-v: debug, -vv: trace)'
            cand --verbose 'More log output (-v: debug, -vv: trace)'
            cand -q 'Only warnings and errors on stderr'
            cand --quiet 'Only warnings and errors on stderr'
            cand --no-progress 'No progress display (a bar on a terminal, else a log line every 10 s)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'dbkeep;schedule;install'= {
            cand --dir 'Write into this folder instead of the scheduler''s own'
            cand --randomized-delay 'systemd: spread starts over up to this long (`RandomizedDelaySec=`)'
            cand --binary 'The dbkeep binary the units run (default: this one)'
            cand -c 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)'
            cand --config 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)'
            cand --log-format 'Log format on stderr: `text` for people, `json` (one object per line) for machines'
            cand --systemd 'Write systemd units'
            cand --cron 'Write crontab lines'
            cand --user 'For the current user: systemd user units (~/.config/systemd/user), or lines for the user''s crontab'
            cand --print 'Print the files instead of writing them'
            cand -v 'More log output (-v: debug, -vv: trace)'
            cand --verbose 'More log output (-v: debug, -vv: trace)'
            cand -q 'Only warnings and errors on stderr'
            cand --quiet 'Only warnings and errors on stderr'
            cand --no-progress 'No progress display (a bar on a terminal, else a log line every 10 s)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'dbkeep;schedule;help'= {
            cand run 'Run every scheduled job at its times, in the foreground, until SIGTERM (for systemd `Type=simple` and containers). SIGHUP reloads the config'
            cand list 'Show each scheduled job''s next fire times, in its time zone and in UTC'
            cand install 'Write a systemd service and timer, or crontab lines, for each scheduled job'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'dbkeep;schedule;help;run'= {
        }
        &'dbkeep;schedule;help;list'= {
        }
        &'dbkeep;schedule;help;install'= {
        }
        &'dbkeep;schedule;help;help'= {
        }
        &'dbkeep;config'= {
            cand -c 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)'
            cand --config 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)'
            cand --log-format 'Log format on stderr: `text` for people, `json` (one object per line) for machines'
            cand -v 'More log output (-v: debug, -vv: trace)'
            cand --verbose 'More log output (-v: debug, -vv: trace)'
            cand -q 'Only warnings and errors on stderr'
            cand --quiet 'Only warnings and errors on stderr'
            cand --no-progress 'No progress display (a bar on a terminal, else a log line every 10 s)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand validate 'Check the config: report every problem with its YAML path (exit 78), then check tools, password files and storages (exit 1 on failure)'
            cand show 'Print the effective config (file + DBKEEP_* env + defaults), secrets redacted'
            cand schema 'Print the JSON Schema of the config file (for editors: yaml-language-server)'
            cand init 'Write a commented starter config'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'dbkeep;config;validate'= {
            cand -c 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)'
            cand --config 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)'
            cand --log-format 'Log format on stderr: `text` for people, `json` (one object per line) for machines'
            cand --no-environment 'Only check the file; do not look for tools or touch storages'
            cand -v 'More log output (-v: debug, -vv: trace)'
            cand --verbose 'More log output (-v: debug, -vv: trace)'
            cand -q 'Only warnings and errors on stderr'
            cand --quiet 'Only warnings and errors on stderr'
            cand --no-progress 'No progress display (a bar on a terminal, else a log line every 10 s)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'dbkeep;config;show'= {
            cand -c 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)'
            cand --config 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)'
            cand --log-format 'Log format on stderr: `text` for people, `json` (one object per line) for machines'
            cand -v 'More log output (-v: debug, -vv: trace)'
            cand --verbose 'More log output (-v: debug, -vv: trace)'
            cand -q 'Only warnings and errors on stderr'
            cand --quiet 'Only warnings and errors on stderr'
            cand --no-progress 'No progress display (a bar on a terminal, else a log line every 10 s)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'dbkeep;config;schema'= {
            cand -c 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)'
            cand --config 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)'
            cand --log-format 'Log format on stderr: `text` for people, `json` (one object per line) for machines'
            cand -v 'More log output (-v: debug, -vv: trace)'
            cand --verbose 'More log output (-v: debug, -vv: trace)'
            cand -q 'Only warnings and errors on stderr'
            cand --quiet 'Only warnings and errors on stderr'
            cand --no-progress 'No progress display (a bar on a terminal, else a log line every 10 s)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'dbkeep;config;init'= {
            cand -c 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)'
            cand --config 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)'
            cand --log-format 'Log format on stderr: `text` for people, `json` (one object per line) for machines'
            cand --force 'Overwrite an existing file'
            cand -v 'More log output (-v: debug, -vv: trace)'
            cand --verbose 'More log output (-v: debug, -vv: trace)'
            cand -q 'Only warnings and errors on stderr'
            cand --quiet 'Only warnings and errors on stderr'
            cand --no-progress 'No progress display (a bar on a terminal, else a log line every 10 s)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'dbkeep;config;help'= {
            cand validate 'Check the config: report every problem with its YAML path (exit 78), then check tools, password files and storages (exit 1 on failure)'
            cand show 'Print the effective config (file + DBKEEP_* env + defaults), secrets redacted'
            cand schema 'Print the JSON Schema of the config file (for editors: yaml-language-server)'
            cand init 'Write a commented starter config'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'dbkeep;config;help;validate'= {
        }
        &'dbkeep;config;help;show'= {
        }
        &'dbkeep;config;help;schema'= {
        }
        &'dbkeep;config;help;init'= {
        }
        &'dbkeep;config;help;help'= {
        }
        &'dbkeep;notify'= {
            cand -c 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)'
            cand --config 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)'
            cand --log-format 'Log format on stderr: `text` for people, `json` (one object per line) for machines'
            cand -v 'More log output (-v: debug, -vv: trace)'
            cand --verbose 'More log output (-v: debug, -vv: trace)'
            cand -q 'Only warnings and errors on stderr'
            cand --quiet 'Only warnings and errors on stderr'
            cand --no-progress 'No progress display (a bar on a terminal, else a log line every 10 s)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand test 'Send a test message through one notifier, or all of them'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'dbkeep;notify;test'= {
            cand -c 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)'
            cand --config 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)'
            cand --log-format 'Log format on stderr: `text` for people, `json` (one object per line) for machines'
            cand -v 'More log output (-v: debug, -vv: trace)'
            cand --verbose 'More log output (-v: debug, -vv: trace)'
            cand -q 'Only warnings and errors on stderr'
            cand --quiet 'Only warnings and errors on stderr'
            cand --no-progress 'No progress display (a bar on a terminal, else a log line every 10 s)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'dbkeep;notify;help'= {
            cand test 'Send a test message through one notifier, or all of them'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'dbkeep;notify;help;test'= {
        }
        &'dbkeep;notify;help;help'= {
        }
        &'dbkeep;wal'= {
            cand -c 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)'
            cand --config 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)'
            cand --log-format 'Log format on stderr: `text` for people, `json` (one object per line) for machines'
            cand -v 'More log output (-v: debug, -vv: trace)'
            cand --verbose 'More log output (-v: debug, -vv: trace)'
            cand -q 'Only warnings and errors on stderr'
            cand --quiet 'Only warnings and errors on stderr'
            cand --no-progress 'No progress display (a bar on a terminal, else a log line every 10 s)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand push 'Archive one WAL file into the job''s storages (PostgreSQL''s `archive_command`)'
            cand fetch 'Fetch one archived WAL file (PostgreSQL''s `restore_command`)'
            cand prefetch 'Fetch WAL segments ahead into a spool folder (started by `wal fetch`)'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'dbkeep;wal;push'= {
            cand -c 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)'
            cand --config 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)'
            cand --log-format 'Log format on stderr: `text` for people, `json` (one object per line) for machines'
            cand -v 'More log output (-v: debug, -vv: trace)'
            cand --verbose 'More log output (-v: debug, -vv: trace)'
            cand -q 'Only warnings and errors on stderr'
            cand --quiet 'Only warnings and errors on stderr'
            cand --no-progress 'No progress display (a bar on a terminal, else a log line every 10 s)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'dbkeep;wal;fetch'= {
            cand --identity 'age identity file (private keys) for an encrypted backup; may be repeated'
            cand --passphrase-file 'File whose first line is the passphrase of a passphrase-encrypted backup (else DBKEEP_AGE_PASSPHRASE, else the job''s `passphrase_file`)'
            cand -c 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)'
            cand --config 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)'
            cand --log-format 'Log format on stderr: `text` for people, `json` (one object per line) for machines'
            cand -v 'More log output (-v: debug, -vv: trace)'
            cand --verbose 'More log output (-v: debug, -vv: trace)'
            cand -q 'Only warnings and errors on stderr'
            cand --quiet 'Only warnings and errors on stderr'
            cand --no-progress 'No progress display (a bar on a terminal, else a log line every 10 s)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'dbkeep;wal;prefetch'= {
            cand --spool 'The spool folder'
            cand -c 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)'
            cand --config 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)'
            cand --log-format 'Log format on stderr: `text` for people, `json` (one object per line) for machines'
            cand -v 'More log output (-v: debug, -vv: trace)'
            cand --verbose 'More log output (-v: debug, -vv: trace)'
            cand -q 'Only warnings and errors on stderr'
            cand --quiet 'Only warnings and errors on stderr'
            cand --no-progress 'No progress display (a bar on a terminal, else a log line every 10 s)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'dbkeep;wal;help'= {
            cand push 'Archive one WAL file into the job''s storages (PostgreSQL''s `archive_command`)'
            cand fetch 'Fetch one archived WAL file (PostgreSQL''s `restore_command`)'
            cand prefetch 'Fetch WAL segments ahead into a spool folder (started by `wal fetch`)'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'dbkeep;wal;help;push'= {
        }
        &'dbkeep;wal;help;fetch'= {
        }
        &'dbkeep;wal;help;prefetch'= {
        }
        &'dbkeep;wal;help;help'= {
        }
        &'dbkeep;binlog'= {
            cand -c 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)'
            cand --config 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)'
            cand --log-format 'Log format on stderr: `text` for people, `json` (one object per line) for machines'
            cand -v 'More log output (-v: debug, -vv: trace)'
            cand --verbose 'More log output (-v: debug, -vv: trace)'
            cand -q 'Only warnings and errors on stderr'
            cand --quiet 'Only warnings and errors on stderr'
            cand --no-progress 'No progress display (a bar on a terminal, else a log line every 10 s)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand pull 'Archive every closed binlog file the job''s storages lack'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'dbkeep;binlog;pull'= {
            cand -c 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)'
            cand --config 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)'
            cand --log-format 'Log format on stderr: `text` for people, `json` (one object per line) for machines'
            cand --no-rotate 'Do not close the server''s current binlog first'
            cand -v 'More log output (-v: debug, -vv: trace)'
            cand --verbose 'More log output (-v: debug, -vv: trace)'
            cand -q 'Only warnings and errors on stderr'
            cand --quiet 'Only warnings and errors on stderr'
            cand --no-progress 'No progress display (a bar on a terminal, else a log line every 10 s)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'dbkeep;binlog;help'= {
            cand pull 'Archive every closed binlog file the job''s storages lack'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'dbkeep;binlog;help;pull'= {
        }
        &'dbkeep;binlog;help;help'= {
        }
        &'dbkeep;generate'= {
            cand --out 'Folder to write `man/` and `completions/` into'
            cand -c 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)'
            cand --config 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)'
            cand --log-format 'Log format on stderr: `text` for people, `json` (one object per line) for machines'
            cand -v 'More log output (-v: debug, -vv: trace)'
            cand --verbose 'More log output (-v: debug, -vv: trace)'
            cand -q 'Only warnings and errors on stderr'
            cand --quiet 'Only warnings and errors on stderr'
            cand --no-progress 'No progress display (a bar on a terminal, else a log line every 10 s)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'dbkeep;demo'= {
            cand --dir 'Folder for the sample database and the restored copy'
            cand --to 'Folder the backup is stored in'
            cand -c 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)'
            cand --config 'Config file (default: ./dbkeep.yaml, then the user config dir, then /etc/dbkeep/config.yaml)'
            cand --log-format 'Log format on stderr: `text` for people, `json` (one object per line) for machines'
            cand -v 'More log output (-v: debug, -vv: trace)'
            cand --verbose 'More log output (-v: debug, -vv: trace)'
            cand -q 'Only warnings and errors on stderr'
            cand --quiet 'Only warnings and errors on stderr'
            cand --no-progress 'No progress display (a bar on a terminal, else a log line every 10 s)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'dbkeep;help'= {
            cand backup 'Back up the config''s jobs, or one database URL with `--to DIR`'
            cand restore 'Restore a backup into a database'
            cand list 'List backups, newest first'
            cand verify 'Re-read a backup and check it against its manifest'
            cand inspect 'Show a source''s server, client, TLS, databases and sizes, writing nothing'
            cand prune 'Delete old backups by the jobs'' retention rules'
            cand schedule 'Run jobs on their schedules, list fire times, or install timers'
            cand config 'Check, show or create the config file'
            cand notify 'Send test notifications'
            cand wal 'Archive and fetch PostgreSQL WAL (`archive_command`, `restore_command`)'
            cand binlog 'Archive MariaDB/MySQL binary logs for point-in-time recovery'
            cand generate 'Write man pages and shell completions (for packagers)'
            cand demo 'Try dbkeep: create a sample SQLite database, back it up to ./backups, restore it, and compare'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'dbkeep;help;backup'= {
        }
        &'dbkeep;help;restore'= {
        }
        &'dbkeep;help;list'= {
        }
        &'dbkeep;help;verify'= {
        }
        &'dbkeep;help;inspect'= {
        }
        &'dbkeep;help;prune'= {
        }
        &'dbkeep;help;schedule'= {
            cand run 'Run every scheduled job at its times, in the foreground, until SIGTERM (for systemd `Type=simple` and containers). SIGHUP reloads the config'
            cand list 'Show each scheduled job''s next fire times, in its time zone and in UTC'
            cand install 'Write a systemd service and timer, or crontab lines, for each scheduled job'
        }
        &'dbkeep;help;schedule;run'= {
        }
        &'dbkeep;help;schedule;list'= {
        }
        &'dbkeep;help;schedule;install'= {
        }
        &'dbkeep;help;config'= {
            cand validate 'Check the config: report every problem with its YAML path (exit 78), then check tools, password files and storages (exit 1 on failure)'
            cand show 'Print the effective config (file + DBKEEP_* env + defaults), secrets redacted'
            cand schema 'Print the JSON Schema of the config file (for editors: yaml-language-server)'
            cand init 'Write a commented starter config'
        }
        &'dbkeep;help;config;validate'= {
        }
        &'dbkeep;help;config;show'= {
        }
        &'dbkeep;help;config;schema'= {
        }
        &'dbkeep;help;config;init'= {
        }
        &'dbkeep;help;notify'= {
            cand test 'Send a test message through one notifier, or all of them'
        }
        &'dbkeep;help;notify;test'= {
        }
        &'dbkeep;help;wal'= {
            cand push 'Archive one WAL file into the job''s storages (PostgreSQL''s `archive_command`)'
            cand fetch 'Fetch one archived WAL file (PostgreSQL''s `restore_command`)'
            cand prefetch 'Fetch WAL segments ahead into a spool folder (started by `wal fetch`)'
        }
        &'dbkeep;help;wal;push'= {
        }
        &'dbkeep;help;wal;fetch'= {
        }
        &'dbkeep;help;wal;prefetch'= {
        }
        &'dbkeep;help;binlog'= {
            cand pull 'Archive every closed binlog file the job''s storages lack'
        }
        &'dbkeep;help;binlog;pull'= {
        }
        &'dbkeep;help;generate'= {
        }
        &'dbkeep;help;demo'= {
        }
        &'dbkeep;help;help'= {
        }
    ]
    $completions[$command]
}
