//! `cargo xtask migrate [--database-url URL] [--fresh]` and `cargo xtask migrate new <name>`.
//!
//! The default database is `target/dev/hangar.db` under the workspace root: a scratch file
//! inside the build output, so `--fresh` can never touch a real deployment's data directory.

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use hangar_db::{Backend, ConnectOptions, Db};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct MigrateArgs {
    #[command(subcommand)]
    action: Option<MigrateAction>,
    /// `sqlite://<path>` or `postgres://…` [default: sqlite://target/dev/hangar.db]
    #[arg(long)]
    database_url: Option<String>,
    /// Start from an empty database: delete the SQLite file, or drop and recreate the
    /// PostgreSQL `public` schema.
    #[arg(long)]
    fresh: bool,
}

#[derive(Debug, Subcommand)]
enum MigrateAction {
    /// Scaffold `migration/sql/m<NNNN>_<name>/{postgres,sqlite}.up.sql`.
    New {
        /// Lower-case snake_case, e.g. `workspace_builds`.
        name: String,
    },
}

pub async fn run(root: &Path, args: MigrateArgs) -> anyhow::Result<ExitCode> {
    if let Some(MigrateAction::New { name }) = args.action {
        scaffold(root, &name)?;
        return Ok(ExitCode::SUCCESS);
    }
    let opts = match args.database_url {
        Some(url) => {
            if let Some(path) = sqlite_path(&url) {
                prepare_sqlite_file(&path, args.fresh)?;
            }
            ConnectOptions::new(url)
        }
        None => {
            let path = root.join("target/dev/hangar.db");
            prepare_sqlite_file(&path, args.fresh)?;
            ConnectOptions::sqlite_file(&path)
        }
    };
    let db = Db::connect(&opts).await?;
    let result = migrate(&db, args.fresh).await;
    db.close().await;
    result?;
    Ok(ExitCode::SUCCESS)
}

async fn migrate(db: &Db, fresh: bool) -> anyhow::Result<()> {
    if fresh && db.backend() == Backend::Postgres {
        // Everything Hangar creates lives in `public`; dropping the schema also removes
        // enums, views and trigger functions that a table-by-table drop would leave.
        db.execute("DROP SCHEMA IF EXISTS public CASCADE", vec![])
            .await
            .context("drop schema public")?;
        db.execute("CREATE SCHEMA public", vec![])
            .await
            .context("create schema public")?;
    }
    let status = db.migration_status().await?;
    if status.pending.is_empty() {
        println!("Database is up to date.");
    } else {
        let n = db.migrate().await?;
        println!("Applied {n} migrations.");
    }
    Ok(())
}

/// The file behind a `sqlite:` URL (`sqlite://rel/path`, `sqlite:///abs/path`), or `None`
/// for other backends and in-memory databases.
fn sqlite_path(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    if path.is_empty() || path == ":memory:" {
        return None;
    }
    Some(PathBuf::from(path))
}

/// Creates the parent directory and, with `fresh`, removes the database with its WAL and
/// shared-memory files (a stale WAL next to a new file would be replayed into it).
fn prepare_sqlite_file(path: &Path, fresh: bool) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    }
    if fresh {
        for suffix in ["", "-wal", "-shm"] {
            let mut file = path.as_os_str().to_owned();
            file.push(suffix);
            match std::fs::remove_file(&file) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(e)
                        .with_context(|| format!("delete {}", Path::new(&file).display()));
                }
            }
        }
    }
    Ok(())
}

/// `migrate new <name>`: both backends' files at once, so no step ever exists for only one
/// of them (the schema-parity test would fail later, further from the cause).
fn scaffold(root: &Path, name: &str) -> anyhow::Result<()> {
    let valid = name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !valid {
        bail!("migration name {name:?} must be lower-case snake_case, e.g. workspace_builds");
    }
    let sql_dir = root.join("migration/sql");
    let next = next_number(&sql_dir)?;
    let step = format!("m{next:04}_{name}");
    let dir = sql_dir.join(&step);
    std::fs::create_dir(&dir).with_context(|| format!("create {}", dir.display()))?;
    for (backend, file) in [
        ("PostgreSQL", "postgres.up.sql"),
        ("SQLite", "sqlite.up.sql"),
    ] {
        let path = dir.join(file);
        let text = format!(
            "-- {step} ({backend}). Runs in one transaction with the other statements of this\n\
             -- step. Use the same table, column, index and trigger names on both backends;\n\
             -- trigger errors raise 'hangar:<rule>[: message]'.\n"
        );
        std::fs::write(&path, text).with_context(|| format!("write {}", path.display()))?;
        println!("Created migration/sql/{step}/{file}");
    }
    println!(
        "Next: register the step in migration/src/lib.rs (a `SqlStep {{ name: \"{step}\", … }}` \
         at the end of `Migrator::migrations()`, and both files in `SQL_FILES`), then run \
         `cargo xtask codegen` to refresh the schema snapshots."
    );
    Ok(())
}

/// One more than the highest `m<NNNN>_…` directory (empty seed steps keep their directory,
/// so numbers are never reused).
fn next_number(sql_dir: &Path) -> anyhow::Result<u32> {
    let mut highest = 0;
    for entry in
        std::fs::read_dir(sql_dir).with_context(|| format!("read {}", sql_dir.display()))?
    {
        let name = entry?.file_name();
        let Some(name) = name.to_str() else { continue };
        let number = name
            .strip_prefix('m')
            .and_then(|rest| rest.split_once('_'))
            .and_then(|(digits, _)| digits.parse::<u32>().ok());
        if let Some(n) = number {
            highest = highest.max(n);
        }
    }
    Ok(highest + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_name_their_file() {
        assert_eq!(
            sqlite_path("sqlite://target/dev/hangar.db"),
            Some(PathBuf::from("target/dev/hangar.db"))
        );
        assert_eq!(
            sqlite_path("sqlite:///tmp/h.db?mode=rwc"),
            Some(PathBuf::from("/tmp/h.db"))
        );
        assert_eq!(sqlite_path("sqlite::memory:"), None);
        assert_eq!(sqlite_path("postgres://postgres@localhost/x"), None);
    }

    #[test]
    fn the_next_number_follows_the_highest_directory() {
        let dir = std::env::temp_dir().join(format!("xtask-next-{}", uuid::Uuid::new_v4()));
        for d in ["m0001_a", "m0002_b", "m0010_c", "notes"] {
            std::fs::create_dir_all(dir.join(d)).unwrap();
        }
        assert_eq!(next_number(&dir).unwrap(), 11);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn new_scaffolds_both_backends() {
        let root = std::env::temp_dir().join(format!("xtask-new-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(root.join("migration/sql/m0004_org_guard")).unwrap();
        scaffold(&root, "workspace_builds").unwrap();
        let step = root.join("migration/sql/m0005_workspace_builds");
        for file in ["postgres.up.sql", "sqlite.up.sql"] {
            let text = std::fs::read_to_string(step.join(file)).unwrap();
            assert!(text.starts_with("-- m0005_workspace_builds ("), "{text}");
        }
        assert!(scaffold(&root, "Bad-Name").is_err());
        std::fs::remove_dir_all(&root).unwrap();
    }
}
