//! `cargo xtask …`: the developer commands of spec 02 §5 and the benchmarks of 02 §10.
//!
//! Paths are resolved from the workspace root (this crate's parent directory), so the
//! commands behave the same from any directory of the checkout.

mod bench;
mod codegen;
mod migrate;
mod openapi;

use anyhow::Context;
use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    about = "Hangar developer commands."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Write the OpenAPI document to docs/api/openapi.json.
    Openapi {
        /// Only compare; exit 1 if the committed file is stale.
        #[arg(long)]
        check: bool,
    },
    /// Write the schema snapshots migration/snapshots/{sqlite,postgres}.schema.
    ///
    /// PostgreSQL needs HANGAR_TEST_POSTGRES_URL (a server whose user may create
    /// databases); without it only the SQLite snapshot is handled.
    Codegen {
        /// Only compare; exit 1 if a snapshot is stale.
        #[arg(long)]
        check: bool,
    },
    /// Apply migrations to a development database, or scaffold a new migration.
    Migrate(migrate::MigrateArgs),
    /// Run a benchmark of spec 02 §10, 03 §11 or 04 §10.
    Bench {
        #[command(subcommand)]
        which: bench::Which,
    },
    /// The bare hyper server of the auth benchmark (phase A); run by `bench auth` as a
    /// child process so it is measured exactly like the `hangar` server.
    #[command(hide = true)]
    BenchBareServer {
        #[arg(long, default_value = "127.0.0.1:0")]
        address: String,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let root = workspace_root();
    let result = match cli.command {
        Command::Openapi { check } => openapi::run(&root, check),
        Command::Codegen { check } => codegen::run(&root, check).await,
        Command::Migrate(args) => migrate::run(&root, args).await,
        Command::Bench { which } => bench::run(&root, which).await,
        Command::BenchBareServer { address } => bench::bare::serve(&address)
            .await
            .map(|()| ExitCode::SUCCESS),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root, fixed at compile time: xtask always lives one level below it.
fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// Cargo's target directory (honours `CARGO_TARGET_DIR` like cargo: relative to the
/// current directory).
fn target_dir(root: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => root.join("target"),
    }
}

/// `path` relative to the workspace root, for messages.
fn display(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .display()
        .to_string()
}

/// Brings a generated file up to date, or with `check` only reports whether it is.
///
/// Returns whether the file was already up to date. Writing only when the content differs
/// keeps mtimes stable, so the build scripts and editors watching these files stay quiet.
fn sync_file(
    root: &Path,
    path: &Path,
    content: &str,
    check: bool,
    command: &str,
) -> anyhow::Result<bool> {
    let shown = display(root, path);
    let current = match std::fs::read_to_string(path) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("read {shown}")),
    };
    let fresh = current.as_deref() == Some(content);
    if check {
        match (&current, fresh) {
            (_, true) => println!("{shown} is up to date."),
            (None, _) => println!("{shown} is missing: run `{command}`."),
            (Some(_), false) => println!("{shown} is stale: run `{command}`."),
        }
    } else if fresh {
        println!("{shown} is up to date.");
    } else {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
        }
        std::fs::write(path, content).with_context(|| format!("write {shown}"))?;
        println!("Wrote {shown}.");
    }
    Ok(fresh)
}

/// A scratch directory, removed however the function holding it returns.
struct ScratchDir(PathBuf);

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Exit status of a `--check` run: 1 when anything was stale.
fn check_status(all_fresh: bool, check: bool) -> ExitCode {
    if check && !all_fresh {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_file_writes_only_stale_files_and_check_never_writes() {
        let root = std::env::temp_dir().join(format!("xtask-sync-{}", uuid::Uuid::new_v4()));
        let path = root.join("docs/out.txt");
        assert!(!sync_file(&root, &path, "one", true, "x").unwrap());
        assert!(!path.exists(), "--check must not write");
        assert!(!sync_file(&root, &path, "one", false, "x").unwrap());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "one");
        assert!(sync_file(&root, &path, "one", true, "x").unwrap());
        assert!(!sync_file(&root, &path, "two", true, "x").unwrap());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "one");
        std::fs::remove_dir_all(&root).unwrap();
    }
}
