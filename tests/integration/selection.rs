//! What a dump holds: excluded databases and tables, schema only, and extra
//! tool arguments, each shown by what a restore brings back.

use crate::util::*;

/// A config job for `db` on the shared PostgreSQL server, with `extra` keys.
fn pg_job(dir: &std::path::Path, db: &str, extra: &str) -> std::path::PathBuf {
    write_config(
        dir,
        db,
        &format!(
            "type: postgres\nhost: {}\nport: {}\nuser: postgres\ndatabase: {db}\n{extra}",
            pg_host(),
            pg_port()
        ),
    )
}

fn pg_tables(db: &str) -> String {
    psql(
        db,
        "select table_schema || '.' || table_name from information_schema.tables \
         where table_schema not in ('pg_catalog', 'information_schema') order by 1",
    )
}

#[test]
fn postgres_exclusions_schema_only_and_extra_arguments_reach_the_tools() {
    let mut db = PgDb::new("pg_select");
    psql(
        &db.name,
        "create table keep (id int); insert into keep values (1), (2), (3);
         create table gone (id int); insert into gone values (1);
         create table shell (id int); insert into shell values (1), (2);
         create schema hidden; create table hidden.h (id int); insert into hidden.h values (1)",
    );
    let dir = tempdir();
    let config = pg_job(
        dir.path(),
        &db.name,
        "exclude_tables: [public.gone]\nexclude_table_data: [public.shell]\ndump_args: [--exclude-schema=hidden]",
    );
    ok(run(dbkeep().arg("-c").arg(&config).arg("backup")));
    let copy = db.another("copy");
    ok(run(dbkeep().arg("-c").arg(&config).args([
        "restore",
        &db.name,
        "--to-database",
        &copy,
    ])));
    assert_eq!(pg_tables(&copy), "public.keep\npublic.shell\n");
    assert_eq!(psql(&copy, "select count(*) from keep"), "3\n");
    assert_eq!(psql(&copy, "select count(*) from shell"), "0\n");

    // restore_args reach pg_restore: only the table it names comes back.
    let config = pg_job(dir.path(), &db.name, "restore_args: [--table=keep]");
    let only = db.another("only");
    ok(run(dbkeep().arg("-c").arg(&config).args([
        "restore",
        &db.name,
        "--to-database",
        &only,
    ])));
    assert_eq!(pg_tables(&only), "public.keep\n");

    // schema_only: every definition, no rows.
    let config = pg_job(dir.path(), &db.name, "schema_only: true");
    ok(run(dbkeep().arg("-c").arg(&config).arg("backup")));
    let empty = db.another("empty");
    ok(run(dbkeep().arg("-c").arg(&config).args([
        "restore",
        &db.name,
        "--to-database",
        &empty,
    ])));
    assert_eq!(
        pg_tables(&empty),
        "hidden.h\npublic.gone\npublic.keep\npublic.shell\n"
    );
    assert_eq!(psql(&empty, "select count(*) from keep"), "0\n");
}

#[test]
fn mariadb_exclusions_and_schema_only_reach_the_dump() {
    let mut db = MyDb::new("my_select");
    mysql(&format!(
        "use {0}; create table keep (id int); insert into keep values (1), (2), (3);
         create table gone (id int); insert into gone values (1);
         create table shell (id int); insert into shell values (1), (2)",
        db.name
    ));
    let copy = db.another("copy");
    let dir = tempdir();
    let job = |extra: &str| {
        write_config(
            dir.path(),
            &db.name,
            &format!(
                "type: mariadb\nhost: {}\nport: {}\nuser: root\ndatabase: {}\n{extra}",
                my_host(),
                my_port(),
                db.name
            ),
        )
    };
    let tables = |d: &str| {
        mysql(&format!(
            "select table_name from information_schema.tables where table_schema = '{d}' order by 1"
        ))
    };
    let config = job("exclude_tables: [gone]\nexclude_table_data: [shell]");
    ok(run(dbkeep().arg("-c").arg(&config).arg("backup")));
    ok(run(dbkeep().arg("-c").arg(&config).args([
        "restore",
        &db.name,
        "--to-database",
        &copy,
    ])));
    assert_eq!(tables(&copy), "keep\nshell\n");
    assert_eq!(mysql(&format!("select count(*) from {copy}.keep")), "3\n");
    assert_eq!(mysql(&format!("select count(*) from {copy}.shell")), "0\n");

    let config = job("schema_only: true");
    ok(run(dbkeep().arg("-c").arg(&config).arg("backup")));
    let empty = db.another("empty");
    ok(run(dbkeep().arg("-c").arg(&config).args([
        "restore",
        &db.name,
        "--to-database",
        &empty,
    ])));
    assert_eq!(tables(&empty), "gone\nkeep\nshell\n");
    assert_eq!(mysql(&format!("select count(*) from {empty}.keep")), "0\n");
}

#[test]
fn excluded_databases_are_left_out_of_a_whole_server_backup() {
    let a = PrivateCluster::start();
    for db in ["wanted", "also", "skipped"] {
        a.psql("postgres", &format!("create database {db}"));
        a.psql(db, "create table t (id int); insert into t values (1)");
    }
    let dir = tempdir();
    let config = write_config(
        dir.path(),
        "cluster",
        &format!(
            "type: postgres\nhost: 127.0.0.1\nport: {}\nuser: postgres\ndatabases: all\nexclude_databases: [skipped, postgres]",
            a.port
        ),
    );
    ok(run(dbkeep().arg("-c").arg(&config).arg("backup")));
    let m = &manifests(&dir.path().join("backups"))[0];
    assert_eq!(m["databases"], serde_json::json!(["also", "wanted"]), "{m}");
    let b = PrivateCluster::start();
    ok(run(dbkeep().arg("-c").arg(&config).args([
        "restore",
        "cluster",
        "--target",
        &format!("postgres://postgres@127.0.0.1:{}/postgres", b.port),
    ])));
    assert_eq!(
        b.psql(
            "postgres",
            "select string_agg(datname, ',' order by datname) from pg_database where not datistemplate"
        )
        .trim(),
        "also,postgres,wanted"
    );
    assert_eq!(b.psql("wanted", "select count(*) from t").trim(), "1");
    assert_eq!(b.psql("also", "select count(*) from t").trim(), "1");
}

#[test]
fn extra_arguments_that_name_files_or_secrets_are_refused() {
    let db = PgDb::new("pg_args");
    let dir = tempdir();
    let config = pg_job(
        dir.path(),
        &db.name,
        "dump_args: [--file=/tmp/stolen.sql, -W]\nrestore_args: [--dbname=other]",
    );
    let out = run(dbkeep().arg("-c").arg(&config).args(["config", "validate"]));
    assert_eq!(out.status.code(), Some(78), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    for want in [
        "jobs.pg_args".to_string(),
        "source.dump_args[0]: `--file=/tmp/stolen.sql` is refused".to_string(),
        "source.dump_args[1]: `-W` is refused".to_string(),
        "source.restore_args[0]: `--dbname=other` is refused".to_string(),
    ] {
        assert!(err.contains(&want), "missing `{want}` in:\n{err}");
    }
    assert!(!std::path::Path::new("/tmp/stolen.sql").exists());
}
