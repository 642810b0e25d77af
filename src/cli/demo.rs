//! `dbkeep demo`: a first run with nothing to set up. It creates a sample
//! SQLite database, backs it up to `./backups` through the same code as every
//! backup, restores it into a new file, and compares the two row for row.

use std::path::PathBuf;

use anyhow::{Context, Result};
use rusqlite::Connection;

use super::{location, print};
use crate::app::restore::{self, Plan};
use crate::catalog::manifest;
use crate::config::{Compression, Job, SourceConfig};
use crate::connector::source::SqliteConfig;
use crate::connector::{self, RestoreOptions};
use crate::util::human_size;

/// Arguments of `dbkeep demo`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Folder for the sample database and the restored copy.
    #[arg(long, value_name = "DIR", default_value = "dbkeep-demo")]
    pub dir: PathBuf,

    /// Folder the backup is stored in.
    #[arg(long, value_name = "DIR", default_value = "backups")]
    pub to: String,
}

/// Runs `dbkeep demo`.
pub fn run(args: Args) -> Result<()> {
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("cannot create {}", args.dir.display()))?;
    let db = args.dir.join("app.db");
    if !db.exists() {
        create_sample(&db)?;
        eprintln!("created sample database {}", db.display());
    }
    let job = Job::new(
        SourceConfig::Sqlite(SqliteConfig { path: db.clone() }),
        vec![args.to.clone()],
        Compression::Zstd,
    );
    let target = location(&args.to)?;
    let outcome = crate::app::backup::run(
        "demo",
        &job,
        std::slice::from_ref(&target),
        &Default::default(),
    )?;
    let m = &outcome.manifest;
    print(&format!(
        "backup  {} of {} -> {}/demo/{} ({} stored, {} raw)\n",
        m.id,
        db.display(),
        args.to,
        m.id,
        human_size(m.stored_size),
        human_size(m.raw_size)
    ))?;

    let restored = args.dir.join(format!("restored-{}.db", m.id));
    let entries = manifest::list(&*target.storage, "", Some("demo"))?;
    let entry = manifest::select(&entries, Some(&m.id), None)?;
    let mut conn = connector::connect(
        &SourceConfig::Sqlite(SqliteConfig {
            path: restored.clone(),
        }),
        None,
    )?;
    let plan = Plan {
        entry: &entry,
        storage: &*target.storage,
        database: None,
        to_database: None,
        no_globals: false,
        options: RestoreOptions::default(),
        keys: &crate::pipeline::crypt::Keys::default(),
    };
    restore::run(&plan, &mut *conn)?;
    print(&format!(
        "restore {} -> {} (checksum verified first)\n",
        m.id,
        restored.display()
    ))?;

    let (a, rows) = fingerprint(&db)?;
    let (b, _) = fingerprint(&restored)?;
    if a != b {
        anyhow::bail!("the restored database differs from the original");
    }
    print(&format!("compare {rows} rows in 2 tables: identical\n"))?;
    print(
        "next: `dbkeep list --from backups`, `dbkeep verify --from backups --job demo`, `dbkeep config init`\n",
    )?;
    Ok(())
}

fn create_sample(path: &std::path::Path) -> Result<()> {
    let mut conn = Connection::open(path)?;
    conn.execute_batch(
        "PRAGMA journal_mode=WAL;
         CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL, note TEXT, avatar BLOB);
         CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER REFERENCES customers(id),
                              total NUMERIC, placed_at TEXT);
         CREATE INDEX orders_by_customer ON orders(customer_id);
         CREATE VIEW big_orders AS SELECT * FROM orders WHERE total > 500;",
    )?;
    let tx = conn.transaction()?;
    for i in 1..=1000i64 {
        tx.execute(
            "INSERT INTO customers (id, name, note, avatar) VALUES (?1, ?2, ?3, ?4)",
            rusqlite::params![
                i,
                format!("Kunde {i} – Zoë ✓"),
                if i % 7 == 0 {
                    None
                } else {
                    Some(format!("line one\nline two of {i}"))
                },
                vec![(i % 256) as u8; 16]
            ],
        )?;
    }
    for i in 1..=20_000i64 {
        tx.execute(
            "INSERT INTO orders (customer_id, total, placed_at) VALUES (?1, ?2, ?3)",
            rusqlite::params![
                i % 1000 + 1,
                (i * 37 % 100_000) as f64 / 100.0,
                format!("2026-{:02}-{:02}", i % 12 + 1, i % 28 + 1)
            ],
        )?;
    }
    tx.commit()?;
    Ok(())
}

/// Every row of both tables, in key order, as text; and the row count.
fn fingerprint(path: &std::path::Path) -> Result<(String, usize)> {
    let conn = Connection::open(path)?;
    let mut text = String::new();
    let mut rows = 0;
    for sql in [
        "SELECT id || '|' || name || '|' || ifnull(note, 'NULL') || '|' || hex(avatar) FROM customers ORDER BY id",
        "SELECT id || '|' || customer_id || '|' || total || '|' || placed_at FROM orders ORDER BY id",
    ] {
        let mut stmt = conn.prepare(sql)?;
        for r in stmt.query_map([], |r| r.get::<_, String>(0))? {
            text.push_str(&r?);
            text.push('\n');
            rows += 1;
        }
    }
    Ok((text, rows))
}
