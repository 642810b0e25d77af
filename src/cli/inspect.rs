//! `dbkeep inspect`: the server, the client, TLS, the databases and their
//! sizes, read without writing anything.

use std::path::Path;

use anyhow::Result;

use super::{load_config, print, unknown_job};
use crate::app::inspect::{Inspection, inspect};
use crate::connector::url;
use crate::util::exit::Failure;
use crate::util::{human_size, printable};

/// Arguments of `dbkeep inspect`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Connects the way a backup would (TLS, SSH tunnel, the chosen client) and reads the
server's catalog: nothing is written and no storage is needed.

Examples:
  dbkeep inspect app
  dbkeep inspect 'postgres://postgres@db.example.com/app?sslmode=verify-full&sslrootcert=ca.pem'
  dbkeep inspect ./app.db --json")]
pub struct Args {
    /// A job of the config, or a database URL or SQLite path.
    #[arg(value_name = "JOB|URL")]
    pub target: String,

    /// Print JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// Runs `dbkeep inspect`.
pub fn run(args: Args, config_path: Option<&Path>) -> Result<()> {
    let source = if args.target.contains("://") || Path::new(&args.target).is_file() {
        url::parse(&args.target).map_err(|e| Failure::Usage(format!("{e:#}")))?
    } else {
        let config = load_config(config_path)?;
        config
            .jobs
            .get(&args.target)
            .map(|j| j.source.clone())
            .ok_or_else(|| unknown_job(&config, &args.target))?
    };
    let found = inspect(&source)?;
    if args.json {
        return print(&format!("{}\n", serde_json::to_string_pretty(&found)?));
    }
    print(&human(&found))
}

/// A value the server gave, escaped for the terminal.
fn or_unknown(v: &Option<String>) -> String {
    v.as_deref()
        .map_or_else(|| "unknown".to_string(), printable)
}

fn human(i: &Inspection) -> String {
    let s = &i.survey;
    let mut out = format!(
        "source:          {} ({})\nserver:          {}\nclient:          {}\n",
        printable(&i.source),
        i.engine,
        or_unknown(&s.server_version),
        or_unknown(&s.client)
    );
    out.push_str(&format!(
        "TLS:             {}\n",
        match &s.tls {
            None => "not applicable".to_string(),
            Some(t) if !t.in_use => "not in use".to_string(),
            Some(t) => match &t.detail {
                Some(d) => format!("in use ({})", printable(d)),
                None => "in use".to_string(),
            },
        }
    ));
    if let Some(integrity) = &s.integrity {
        out.push_str(&format!("integrity_check: {}\n", printable(integrity)));
    }
    out.push_str(&format!(
        "estimated dump:  {}\n",
        match i.estimated_dump_bytes {
            Some(n) => format!("about {} before compression", human_size(n)),
            None => "unknown".to_string(),
        }
    ));
    let width = s.databases.iter().map(|d| d.name.len()).max().unwrap_or(0);
    out.push_str(&format!(
        "databases:       {}{}\n",
        s.databases.len(),
        if i.globals {
            ", and the roles and tablespaces"
        } else {
            ""
        }
    ));
    for d in &s.databases {
        let mut line = format!("  {:width$}", printable(&d.name));
        if let Some(b) = d.bytes {
            line.push_str(&format!("  {:>10}", human_size(b)));
        }
        if let Some(k) = d.keys {
            line.push_str(&format!("  {k} keys"));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    if !s.largest_tables.is_empty() {
        out.push_str("largest tables:\n");
        let width = s
            .largest_tables
            .iter()
            .map(|t| printable(&format!("{}.{}", t.database, t.table)).len())
            .max()
            .unwrap_or(0);
        for t in &s.largest_tables {
            out.push_str(&format!(
                "  {:width$}  {:>10}\n",
                printable(&format!("{}.{}", t.database, t.table)),
                human_size(t.bytes)
            ));
        }
    }
    for note in &s.notes {
        out.push_str(&format!("note: {}\n", printable(note)));
    }
    out
}
