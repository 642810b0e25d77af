//! Notifications, hooks and metrics, against real receivers: an HTTP
//! listener in the test (Slack, webhook, health-check) and aiosmtpd (email).

use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};

use crate::util::*;

/// A SQLite file with one row, for jobs that must succeed.
fn sqlite_db(dir: &Path) -> PathBuf {
    let path = dir.join("app.db");
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("create table t (v int); insert into t values (1);")
        .unwrap();
    path
}

fn config(dir: &Path, body: &str) -> PathBuf {
    let path = dir.join("dbkeep.yaml");
    std::fs::write(
        &path,
        format!(
            "storages:\n  local: {{ type: local, path: {} }}\n{body}",
            dir.join("backups").display()
        ),
    )
    .unwrap();
    path
}

fn json(r: &Request) -> serde_json::Value {
    serde_json::from_slice(&r.body)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&r.body)))
}

#[test]
fn slack_webhook_and_healthcheck_report_success_and_failure() {
    let dir = tempdir();
    let db = sqlite_db(dir.path());
    let http = HttpSink::start();
    let cfg = config(
        dir.path(),
        &format!(
            "notifiers:\n  chat: {{ type: slack, url: \"{u}/slack/T000/B000/XXXX\", on: [always] }}\n  \
             hook: {{ type: webhook, url: \"{u}/hook\", on: [success, failure], bearer_token: tok-123, hmac_secret: hmac-key-456 }}\n  \
             ping: {{ type: healthcheck, url: \"{u}/ping/abc\" }}\n\
             defaults:\n  notify: [chat, hook, ping]\n\
             jobs:\n  good: {{ source: {{ type: sqlite, path: {db} }} }}\n  bad: {{ source: {{ type: sqlite, path: {missing} }} }}\n",
            u = http.url,
            db = db.display(),
            missing = dir.path().join("missing.db").display()
        ),
    );
    ok(run(dbkeep().arg("-c").arg(&cfg).args(["backup", "good"])));
    let m = &manifests(&dir.path().join("backups"))[0];
    let id = m["id"].as_str().unwrap();
    let reqs = http.requests();
    let paths: Vec<&str> = reqs.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/ping/abc/start",
            "/slack/T000/B000/XXXX",
            "/hook",
            "/ping/abc"
        ],
        "{reqs:#?}"
    );

    let slack = json(&reqs[1])["text"].as_str().unwrap().to_string();
    for want in [
        "`good` succeeded",
        "storages: local",
        &format!("backup id: {id}"),
        "size: ",
    ] {
        assert!(slack.contains(want), "missing `{want}` in {slack}");
    }
    let hook = &reqs[2];
    assert_eq!(hook.headers["authorization"], "Bearer tok-123");
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(b"hmac-key-456").unwrap();
    mac.update(&hook.body);
    assert_eq!(
        hook.headers["x-dbkeep-signature"],
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    );
    let body = json(hook);
    assert_eq!(body["job"], "good");
    assert_eq!(body["status"], "success");
    assert_eq!(body["backup_id"], id);
    assert_eq!(body["stored_size"], m["stored_size"]);
    assert_eq!(body["storages"][0], "local");

    let out = run(dbkeep().arg("-c").arg(&cfg).args(["backup", "bad"]));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let reqs = http.requests()[4..].to_vec();
    let paths: Vec<&str> = reqs.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/ping/abc/start",
            "/slack/T000/B000/XXXX",
            "/hook",
            "/ping/abc/fail"
        ],
        "{reqs:#?}"
    );
    let slack = json(&reqs[1])["text"].as_str().unwrap().to_string();
    assert!(
        slack.contains("`bad` FAILED") && slack.contains("missing.db does not exist"),
        "{slack}"
    );
    assert_eq!(json(&reqs[2])["status"], "failure");
    assert!(String::from_utf8_lossy(&reqs[3].body).contains("missing.db does not exist"));
}

#[test]
fn default_is_failure_only_and_a_500_is_retried() {
    let dir = tempdir();
    let db = sqlite_db(dir.path());
    let http = HttpSink::start_failing(1);
    let cfg = config(
        dir.path(),
        &format!(
            "notifiers:\n  chat: {{ type: slack, url: \"{u}/s\" }}\n\
             jobs:\n  good: {{ source: {{ type: sqlite, path: {db} }}, notify: [chat] }}\n  \
             bad: {{ source: {{ type: sqlite, path: /nonexistent/x.db }}, notify: [chat] }}\n",
            u = http.url,
            db = db.display()
        ),
    );
    ok(run(dbkeep().arg("-c").arg(&cfg).args(["backup", "good"])));
    assert!(
        http.requests().is_empty(),
        "a success is not reported by default"
    );
    let out = run(dbkeep().arg("-c").arg(&cfg).args(["backup", "bad"]));
    assert_eq!(out.status.code(), Some(1));
    let reqs = http.requests();
    assert_eq!(reqs.len(), 2, "the first attempt got a 500 and was retried");
    assert_eq!(reqs[0].body, reqs[1].body);
}

#[test]
fn email_reaches_a_real_smtp_server() {
    let smtp = Smtp::start();
    let dir = tempdir();
    let db = sqlite_db(dir.path());
    let cfg = config(
        dir.path(),
        &format!(
            "notifiers:\n  mail:\n    type: email\n    smtp_host: 127.0.0.1\n    smtp_port: {}\n    tls: none\n    \
             from: dbkeep@example.com\n    to: [ops@example.com, dba@example.com]\n    on: [always]\n\
             jobs:\n  app: {{ source: {{ type: sqlite, path: {} }}, notify: [mail] }}\n",
            smtp.port,
            db.display()
        ),
    );
    ok(run(dbkeep().arg("-c").arg(&cfg).arg("backup")));
    let id = manifests(&dir.path().join("backups"))[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mails = smtp.mails();
    assert_eq!(mails.len(), 1, "{mails:?}");
    let mail = &mails[0];
    assert!(
        mail.contains("Subject: [dbkeep] app: backup succeeded on "),
        "{mail}"
    );
    assert!(mail.contains("From: dbkeep@example.com"), "{mail}");
    assert!(
        mail.contains("To: ops@example.com, dba@example.com"),
        "{mail}"
    );
    assert!(
        mail.contains(&format!("backup id: {id}")) && mail.contains("storages: local"),
        "{mail}"
    );
}

#[test]
fn smtp_down_leaves_a_good_backup_good() {
    let dir = tempdir();
    let db = sqlite_db(dir.path());
    let metrics = dir.path().join("dbkeep.prom");
    let cfg = config(
        dir.path(),
        &format!(
            "notifiers:\n  mail: {{ type: email, smtp_host: 127.0.0.1, smtp_port: {}, tls: none, from: a@example.com, to: [b@example.com], on: [always], timeout: 2 }}\n\
             metrics: {{ textfile: {} }}\n\
             jobs:\n  app: {{ source: {{ type: sqlite, path: {} }}, notify: [mail] }}\n",
            free_port(),
            metrics.display(),
            db.display()
        ),
    );
    let out = run(dbkeep().arg("-c").arg(&cfg).args(["backup", "--json"]));
    assert_eq!(
        out.status.code(),
        Some(0),
        "a failed notification does not change the exit code: {}",
        text(&out)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("WARN") && err.contains("notification failed"),
        "{err}"
    );
    let result: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(result[0]["status"], "ok");
    assert_eq!(
        result[0]["warnings"][0],
        "notification `mail` could not be delivered"
    );
    assert_eq!(manifests(&dir.path().join("backups")).len(), 1);
    let prom = std::fs::read_to_string(&metrics).unwrap();
    assert!(
        prom.contains("dbkeep_notification_failures_total{job=\"app\"} 1\n"),
        "{prom}"
    );
}

#[test]
fn failure_messages_never_carry_secrets() {
    let smtp = Smtp::start();
    let http = HttpSink::start();
    let db = PgDb::new("notify_secret");
    let dir = tempdir();
    let password = "p@ss$word\"x";
    let other_secret = "bearer-key-7781";
    let storage_key = "s3-storage-key-4412";
    // A stand-in pg_dump that fails and, like some tools, echoes its
    // connection details, password included, into its error.
    let tools = tempdir();
    stand_in(
        tools.path(),
        "pg_dump",
        &format!(
            "for a in \"$@\"; do [ \"$a\" = --version ] && {{ {} --version; exit 0; }}; done\n\
             echo \"pg_dump: error: connection to postgres://postgres:$PGPASSWORD@127.0.0.1/x failed (password=$PGPASSWORD)\" >&2\nexit 1",
            which("pg_dump").display()
        ),
    );
    let yaml_pw = password.replace('"', "\\\"");
    let cfg = config(
        dir.path(),
        &format!(
            "  offsite: {{ type: s3, bucket: b, endpoint: \"http://127.0.0.1:9\", access_key_id: AKIDX, secret_access_key: {storage_key}, required: false }}\n\
             notifiers:\n  chat: {{ type: slack, url: \"{u}/s\" }}\n  \
             hook: {{ type: webhook, url: \"{u}/h\", bearer_token: {other_secret} }}\n  \
             mail: {{ type: email, smtp_host: 127.0.0.1, smtp_port: {port}, tls: none, from: a@example.com, to: [b@example.com] }}\n\
             jobs:\n  app:\n    storage: [local, offsite]\n    notify: [chat, hook, mail]\n    source:\n      type: postgres\n      host: {host}\n      port: {pgport}\n      user: postgres\n      password: \"{yaml_pw}\"\n      database: {db}\n",
            u = http.url,
            port = smtp.port,
            other_secret = other_secret,
            storage_key = storage_key,
            host = pg_host(),
            pgport = pg_port(),
            db = db.name
        ),
    );
    let out = run(dbkeep()
        .env("PATH", path_with(tools.path()))
        .arg("-c")
        .arg(&cfg)
        .arg("backup"));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let reqs = http.requests();
    assert_eq!(reqs.len(), 2);
    let slack = String::from_utf8_lossy(&reqs[0].body).into_owned();
    assert!(
        slack.contains("connection to postgres://postgres:**REDACTED**@"),
        "{slack}"
    );
    let webhook = String::from_utf8_lossy(&reqs[1].body).into_owned();
    assert!(webhook.contains("password=**REDACTED**"), "{webhook}");
    let mails = smtp.mails();
    assert_eq!(mails.len(), 1);
    assert!(
        mails[0].contains("FAILED") && mails[0].contains("**REDACTED**"),
        "{}",
        mails[0]
    );
    let everything = format!("{slack}\n{webhook}\n{}\n{}", mails[0], text(&out));
    for secret in [password, "p%40ss%24word%22x", other_secret, storage_key] {
        assert!(
            !everything.contains(secret),
            "`{secret}` leaked:\n{everything}"
        );
    }
}

#[test]
fn hooks_run_in_order_with_the_job_environment() {
    let dir = tempdir();
    let db = sqlite_db(dir.path());
    let log = dir.path().join("hooks.log");
    let hook = |tag: &str| {
        format!(
            "[sh, -c, 'echo \"{tag} $DBKEEP_JOB $DBKEEP_STATUS id=$DBKEEP_BACKUP_ID size=$DBKEEP_SIZE dur=$DBKEEP_DURATION err=$DBKEEP_ERROR\" >> {}']",
            log.display()
        )
    };
    let cfg = config(
        dir.path(),
        &format!(
            "hooks:\n  before: [{gb}]\n  after: [{ga}]\n  on_failure: [{gf}]\n  finally: [{gz}]\n\
             jobs:\n  good:\n    source: {{ type: sqlite, path: {db} }}\n    hooks: {{ before: [{jb}], after: [{ja}], on_failure: [{jf}], finally: [{jz}] }}\n  \
             bad:\n    source: {{ type: sqlite, path: /nonexistent/x.db }}\n    hooks: {{ on_failure: [{jf}] }}\n",
            gb = hook("global-before"),
            ga = hook("global-after"),
            gf = hook("global-on_failure"),
            gz = hook("global-finally"),
            jb = hook("job-before"),
            ja = hook("job-after"),
            jf = hook("job-on_failure"),
            jz = hook("job-finally"),
            db = db.display()
        ),
    );
    ok(run(dbkeep().arg("-c").arg(&cfg).args(["backup", "good"])));
    let m = &manifests(&dir.path().join("backups"))[0];
    let lines: Vec<String> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let tags: Vec<&str> = lines.iter().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(
        tags,
        [
            "global-before",
            "job-before",
            "job-after",
            "global-after",
            "job-finally",
            "global-finally"
        ]
    );
    assert!(
        lines[0].starts_with("global-before good running id= size=0"),
        "{}",
        lines[0]
    );
    let after = &lines[2];
    assert!(
        after.starts_with(&format!(
            "job-after good success id={} size={}",
            m["id"].as_str().unwrap(),
            m["stored_size"]
        )),
        "{after}"
    );
    let dur: f64 = after
        .split("dur=")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(dur > 0.0);

    std::fs::remove_file(&log).unwrap();
    let out = run(dbkeep().arg("-c").arg(&cfg).args(["backup", "bad"]));
    assert_eq!(out.status.code(), Some(1));
    let lines = std::fs::read_to_string(&log).unwrap();
    let tags: Vec<&str> = lines
        .lines()
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    assert_eq!(
        tags,
        [
            "global-before",
            "job-on_failure",
            "global-on_failure",
            "global-finally"
        ]
    );
    assert!(
        lines.contains("job-on_failure bad failure id= size=0")
            && lines.contains("err=")
            && lines.contains("x.db does not exist"),
        "{lines}"
    );
}

#[test]
fn a_failing_before_hook_fails_the_job_and_nothing_is_dumped() {
    let dir = tempdir();
    let db = sqlite_db(dir.path());
    let marker = dir.path().join("finally-ran");
    let cfg = config(
        dir.path(),
        &format!(
            "jobs:\n  app:\n    source: {{ type: sqlite, path: {} }}\n    hooks:\n      before: [[sh, -c, 'echo refusing >&2; exit 3']]\n      finally: [[touch, {}]]\n",
            db.display(),
            marker.display()
        ),
    );
    let out = run(dbkeep().arg("-c").arg(&cfg).arg("backup"));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("before hook `sh -c echo refusing >&2; exit 3` exited with code 3"),
        "{err}"
    );
    assert!(err.contains("nothing was dumped"), "{err}");
    assert!(files(&dir.path().join("backups")).is_empty());
    assert!(marker.exists(), "finally hooks still run");
}

/// Parses Prometheus text: every sample line is `name{labels} value`, and
/// every metric has HELP and TYPE lines first.
fn parse_prometheus(text: &str) -> std::collections::BTreeMap<String, f64> {
    let mut typed = std::collections::BTreeSet::new();
    let mut samples = std::collections::BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(["gauge", "counter"].contains(&kind), "{line}");
            typed.insert(name.to_string());
            continue;
        }
        if line.starts_with("# HELP ") {
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("bad line `{line}`"));
        let name = series.split('{').next().unwrap();
        assert!(typed.contains(name), "`{name}` has no TYPE line");
        assert!(
            series.ends_with("\"}") && series.contains("{job=\""),
            "bad labels in `{line}`"
        );
        samples.insert(
            series.to_string(),
            value
                .parse::<f64>()
                .unwrap_or_else(|_| panic!("bad value in `{line}`")),
        );
    }
    samples
}

#[test]
fn metrics_textfile_after_a_success_and_a_failure() {
    let dir = tempdir();
    let db = sqlite_db(dir.path());
    let prom = dir.path().join("metrics").join("dbkeep.prom");
    std::fs::create_dir(dir.path().join("metrics")).unwrap();
    let gateway = HttpSink::start();
    let cfg = config(
        dir.path(),
        &format!(
            "metrics: {{ textfile: {}, pushgateway: \"{}\" }}\n\
             jobs:\n  good: {{ source: {{ type: sqlite, path: {} }} }}\n  bad: {{ source: {{ type: sqlite, path: /nonexistent/x.db }} }}\n",
            prom.display(),
            gateway.url,
            db.display()
        ),
    );
    let before = chrono::Utc::now().timestamp() as f64;
    let out = run(dbkeep().arg("-c").arg(&cfg).arg("backup"));
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let m = &manifests(&dir.path().join("backups"))[0];
    let s = parse_prometheus(&std::fs::read_to_string(&prom).unwrap());
    let get = |k: &str| *s.get(k).unwrap_or_else(|| panic!("no `{k}` in {s:#?}"));
    assert_eq!(get("dbkeep_failures_total{job=\"bad\"}"), 1.0);
    assert_eq!(get("dbkeep_failures_total{job=\"good\"}"), 0.0);
    assert_eq!(get("dbkeep_last_success{job=\"good\"}"), 1.0);
    assert_eq!(get("dbkeep_last_success{job=\"bad\"}"), 0.0);
    assert_eq!(
        get("dbkeep_last_size_bytes{job=\"good\"}"),
        m["stored_size"].as_f64().unwrap()
    );
    assert!(get("dbkeep_last_success_timestamp_seconds{job=\"good\"}") >= before);
    assert!(!s.contains_key("dbkeep_last_success_timestamp_seconds{job=\"bad\"}"));
    assert!(get("dbkeep_last_duration_seconds{job=\"good\"}") > 0.0);

    // A second failure adds to the counter and keeps the other job's series.
    let out = run(dbkeep().arg("-c").arg(&cfg).args(["backup", "bad"]));
    assert_eq!(out.status.code(), Some(1));
    let s = parse_prometheus(&std::fs::read_to_string(&prom).unwrap());
    assert_eq!(s["dbkeep_failures_total{job=\"bad\"}"], 2.0);
    assert_eq!(s["dbkeep_last_success{job=\"good\"}"], 1.0);
    let leftovers: Vec<String> = files(&dir.path().join("metrics"))
        .into_iter()
        .filter(|f| f.contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    let pushes = gateway.requests();
    assert_eq!(pushes.len(), 3);
    assert!(pushes.iter().all(|r| r.method == "PUT"));
    assert!(
        pushes
            .iter()
            .any(|r| r.path == "/metrics/job/dbkeep/dbkeep_job/good")
    );
    assert!(
        String::from_utf8_lossy(&pushes[0].body).contains("# TYPE dbkeep_failures_total counter")
    );
}

#[test]
fn notify_test_sends_through_every_notifier() {
    let http = HttpSink::start();
    let dir = tempdir();
    let cfg = config(
        dir.path(),
        &format!(
            "notifiers:\n  a: {{ type: webhook, url: \"{u}/a\" }}\n  b: {{ type: slack, url: \"{u}/b\" }}\n  \
             dead: {{ type: webhook, url: \"http://127.0.0.1:{p}/x\", timeout: 1 }}\n",
            u = http.url,
            p = free_port()
        ),
    );
    let out = ok(run(dbkeep()
        .arg("-c")
        .arg(&cfg)
        .args(["notify", "test", "a"])));
    assert!(out.contains("sent") && out.contains(" a"), "{out}");
    assert_eq!(json(&http.requests()[0])["event"], "test");
    let out = run(dbkeep().arg("-c").arg(&cfg).args(["notify", "test"]));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("failed  dead") && stdout.contains("sent    b"),
        "{stdout}"
    );
}
