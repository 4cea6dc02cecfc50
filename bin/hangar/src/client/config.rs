//! The config directory: the `url` and `session` files that `hangar login` leaves behind.
//!
//! The session file is a credential, so the directory is created 0700 and each file is written
//! 0600 through a temporary file in the same directory and a rename: a crash or a concurrent
//! reader never sees a half-written token, and the token is never briefly world-readable.

use std::ffi::OsString;
use std::fs;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context as _, Result, anyhow};

const URL_FILE: &str = "url";
const SESSION_FILE: &str = "session";

/// Makes temporary file names unique within this process; the pid makes them unique across.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// The client's config directory.
#[derive(Debug, Clone)]
pub struct ConfigDir {
    root: PathBuf,
}

impl ConfigDir {
    /// The directory from `--global-config` / `HANGAR_CONFIG_DIR`, else the XDG default.
    pub fn resolve(flag: Option<&Path>) -> Result<Self> {
        if let Some(path) = flag.filter(|p| !p.as_os_str().is_empty()) {
            return Ok(Self::at(path));
        }
        default_dir(
            std::env::var_os("XDG_CONFIG_HOME"),
            std::env::var_os("HOME"),
        )
        .map(|root| Self { root })
        .ok_or_else(|| {
            anyhow!(
                "cannot find a config directory: set --global-config or HANGAR_CONFIG_DIR \
                 (neither XDG_CONFIG_HOME nor HOME is set)"
            )
        })
    }

    pub fn at(root: &Path) -> Self {
        Self {
            root: root.to_path_buf(),
        }
    }

    pub fn url(&self) -> Result<Option<String>> {
        self.read(URL_FILE)
    }

    pub fn session(&self) -> Result<Option<String>> {
        self.read(SESSION_FILE)
    }

    pub fn write_url(&self, url: &str) -> Result<()> {
        self.write(URL_FILE, url)
    }

    pub fn write_session(&self, token: &str) -> Result<()> {
        self.write(SESSION_FILE, token)
    }

    /// Removes both files; a file that is already gone is not an error.
    pub fn clear(&self) -> Result<()> {
        for name in [URL_FILE, SESSION_FILE] {
            let path = self.root.join(name);
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(e).with_context(|| format!("cannot remove {}", path.display()));
                }
            }
        }
        Ok(())
    }

    /// Reads one file; a missing or blank file means "not configured". Surrounding whitespace
    /// is ignored so a hand-edited file with a trailing newline still works.
    fn read(&self, name: &str) -> Result<Option<String>> {
        let path = self.root.join(name);
        match fs::read_to_string(&path) {
            Ok(text) => {
                let text = text.trim();
                Ok((!text.is_empty()).then(|| text.to_owned()))
            }
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    fn write(&self, name: &str, contents: &str) -> Result<()> {
        create_private_dir(&self.root)
            .with_context(|| format!("cannot create {}", self.root.display()))?;
        let target = self.root.join(name);
        let temp = self.root.join(format!(
            ".{name}.{}.{}.tmp",
            std::process::id(),
            TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let written = write_new_private_file(&temp, contents.as_bytes())
            .and_then(|()| fs::rename(&temp, &target));
        if let Err(e) = written {
            // Best effort: the temporary file may not even exist if creating it failed.
            let _ = fs::remove_file(&temp);
            return Err(e).with_context(|| format!("cannot write {}", target.display()));
        }
        // Make the rename itself durable; a failure here loses nothing already written.
        if let Ok(dir) = fs::File::open(&self.root) {
            let _ = dir.sync_all();
        }
        Ok(())
    }
}

/// `$XDG_CONFIG_HOME/hangar` when that is an absolute path (the XDG spec says to ignore a
/// relative one), else `$HOME/.config/hangar`.
fn default_dir(xdg_config_home: Option<OsString>, home: Option<OsString>) -> Option<PathBuf> {
    let xdg = xdg_config_home
        .map(PathBuf::from)
        .filter(|p| p.is_absolute());
    let base = match xdg {
        Some(dir) => dir,
        None => PathBuf::from(home.filter(|h| !h.is_empty())?).join(".config"),
    };
    Some(base.join("hangar"))
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    fs::create_dir_all(dir)
}

fn write_new_private_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory under the system temp dir, removed when dropped.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> Self {
            let path = std::env::temp_dir().join(format!(
                "hangar-client-{tag}-{}-{}",
                std::process::id(),
                TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
            ));
            Self(path)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn default_dir_prefers_absolute_xdg_config_home() {
        assert_eq!(
            default_dir(Some("/xdg".into()), Some("/home/a".into())),
            Some(PathBuf::from("/xdg/hangar"))
        );
        assert_eq!(
            default_dir(Some("relative".into()), Some("/home/a".into())),
            Some(PathBuf::from("/home/a/.config/hangar"))
        );
        assert_eq!(
            default_dir(None, Some("/home/a".into())),
            Some(PathBuf::from("/home/a/.config/hangar"))
        );
        assert_eq!(default_dir(None, None), None);
        assert_eq!(default_dir(None, Some("".into())), None);
    }

    #[test]
    fn missing_files_mean_not_configured() -> Result<()> {
        let tmp = TempDir::new("missing");
        let config = ConfigDir::at(&tmp.0);
        assert_eq!(config.url()?, None);
        assert_eq!(config.session()?, None);
        config.clear()?;
        Ok(())
    }

    #[test]
    fn writes_private_files_without_trailing_newline() -> Result<()> {
        let tmp = TempDir::new("write");
        let root = tmp.0.join("nested").join("hangar");
        let config = ConfigDir::at(&root);
        config.write_url("https://hangar.example.com")?;
        config.write_session("abcdefghij-0123456789abcdefghijkl")?;

        assert_eq!(
            fs::read(root.join("url"))?,
            b"https://hangar.example.com".to_vec()
        );
        assert_eq!(
            fs::read(root.join("session"))?,
            b"abcdefghij-0123456789abcdefghijkl".to_vec()
        );
        assert_eq!(
            config.session()?.as_deref(),
            Some("abcdefghij-0123456789abcdefghijkl")
        );

        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode =
                |p: &Path| -> Result<u32> { Ok(fs::metadata(p)?.permissions().mode() & 0o777) };
            assert_eq!(mode(&root)?, 0o700);
            assert_eq!(mode(&root.join("url"))?, 0o600);
            assert_eq!(mode(&root.join("session"))?, 0o600);
        }
        Ok(())
    }

    #[test]
    fn rewrite_replaces_atomically_and_leaves_no_temp_files() -> Result<()> {
        let tmp = TempDir::new("atomic");
        let config = ConfigDir::at(&tmp.0);
        fs::create_dir_all(&tmp.0)?;
        // A pre-existing, world-readable file is replaced by a private one, not rewritten.
        fs::write(tmp.0.join("session"), "old-token\n")?;
        config.write_session("new-token")?;
        assert_eq!(fs::read_to_string(tmp.0.join("session"))?, "new-token");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(tmp.0.join("session"))?.permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let names: Vec<String> = fs::read_dir(&tmp.0)?
            .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect::<std::io::Result<_>>()?;
        assert_eq!(names, vec!["session".to_owned()]);
        Ok(())
    }

    #[test]
    fn clear_removes_both_files() -> Result<()> {
        let tmp = TempDir::new("clear");
        let config = ConfigDir::at(&tmp.0);
        config.write_url("http://localhost:3000")?;
        config.write_session("token")?;
        config.clear()?;
        assert_eq!(config.url()?, None);
        assert_eq!(config.session()?, None);
        Ok(())
    }
}
