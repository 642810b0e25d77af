//! `dbkeep generate`: man pages and shell completions from the clap command.
//!
//! The files are committed under `man/` and `completions/`; a test fails
//! when they are stale. Generating them never loads the config.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::CommandFactory;
use clap_complete::Shell;

/// Arguments of `dbkeep generate`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Folder to write `man/` and `completions/` into.
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub out: PathBuf,
}

/// Writes every man page and completion script under `out`.
pub fn run(args: Args) -> Result<()> {
    let written = write_all(&args.out)?;
    for path in written {
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

/// Writes the files; returns their paths.
pub fn write_all(out: &Path) -> Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    let man = out.join("man");
    std::fs::create_dir_all(&man).with_context(|| format!("cannot create {}", man.display()))?;
    let cmd = super::Cli::command();
    let mut pages = vec![("dbkeep".to_string(), cmd.clone())];
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("dbkeep-{}", sub.get_name());
        let version = cmd.get_version().unwrap_or_default().to_string();
        pages.push((
            name.clone(),
            sub.clone().name(name.clone()).version(version),
        ));
        for nested in sub.get_subcommands().filter(|s| !s.is_hide_set()) {
            let nested_name = format!("{name}-{}", nested.get_name());
            pages.push((nested_name.clone(), nested.clone().name(nested_name)));
        }
    }
    for (name, page) in pages {
        let mut buf = Vec::new();
        clap_mangen::Man::new(page).render(&mut buf)?;
        let path = man.join(format!("{name}.1"));
        std::fs::write(&path, buf).with_context(|| format!("cannot write {}", path.display()))?;
        written.push(path);
    }
    let completions = out.join("completions");
    std::fs::create_dir_all(&completions)
        .with_context(|| format!("cannot create {}", completions.display()))?;
    for shell in [
        Shell::Bash,
        Shell::Zsh,
        Shell::Fish,
        Shell::Elvish,
        Shell::PowerShell,
    ] {
        let mut cmd = super::Cli::command();
        let path = clap_complete::generate_to(shell, &mut cmd, "dbkeep", &completions)?;
        written.push(path);
    }
    Ok(written)
}
