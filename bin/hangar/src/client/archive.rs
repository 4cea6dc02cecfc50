//! Packs a template directory into the tar archive `hangar templates push` uploads (04 §5):
//! regular files and directories only, paths relative to the directory, `.terraform/` left out.

use std::fs::{self, File, Metadata};
use std::io;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};

/// The server's upload limit (04 §4.1); a bigger archive is refused before it is sent.
pub const MAX_ARCHIVE_BYTES: u64 = 104_857_600;

/// The server's entry limit (04 §8).
const MAX_ENTRIES: usize = 10_000;

/// Terraform's local working directory: plugins and caches, never part of a template.
const TERRAFORM_DIR: &str = ".terraform";

/// A packed directory.
#[derive(Debug)]
pub struct Packed {
    /// The tar archive.
    pub bytes: Vec<u8>,
    /// Relative paths of entries that are neither regular files nor directories (symlinks,
    /// sockets, …), which the archive leaves out.
    pub skipped: Vec<String>,
}

/// Tars `dir`, walking it in name order so the same tree always gives the same entry order.
pub fn pack_dir(dir: &Path) -> Result<Packed> {
    let meta = fs::metadata(dir).with_context(|| format!("cannot read {}", dir.display()))?;
    if !meta.is_dir() {
        bail!("{} is not a directory", dir.display());
    }
    let mut packer = Packer {
        builder: tar::Builder::new(Vec::new()),
        skipped: Vec::new(),
        entries: 0,
        data_bytes: 0,
    };
    packer.walk(dir, Path::new(""))?;
    let bytes = packer
        .builder
        .into_inner()
        .context("cannot finish the archive")?;
    if bytes.len() as u64 > MAX_ARCHIVE_BYTES {
        bail!(too_large(dir));
    }
    Ok(Packed {
        bytes,
        skipped: packer.skipped,
    })
}

fn too_large(dir: &Path) -> String {
    format!(
        "{} is too large to upload: the limit is {MAX_ARCHIVE_BYTES} bytes",
        dir.display()
    )
}

struct Packer {
    builder: tar::Builder<Vec<u8>>,
    skipped: Vec<String>,
    entries: usize,
    /// Bytes of file content so far, to stop reading early when the limit is out of reach.
    data_bytes: u64,
}

impl Packer {
    /// Adds the children of `root/rel` (recursively) under the archive path `rel`.
    fn walk(&mut self, root: &Path, rel: &Path) -> Result<()> {
        let here = root.join(rel);
        let mut children = fs::read_dir(&here)
            .with_context(|| format!("cannot list {}", here.display()))?
            .map(|entry| entry.map(|e| e.file_name()))
            .collect::<io::Result<Vec<_>>>()
            .with_context(|| format!("cannot list {}", here.display()))?;
        children.sort();
        for name in children {
            let child_rel: PathBuf = rel.join(&name);
            let path = root.join(&child_rel);
            // Not `metadata`: a symlink must be seen as one, not followed out of the tree.
            let meta = fs::symlink_metadata(&path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            if meta.is_dir() {
                if name == TERRAFORM_DIR {
                    continue;
                }
                self.count(root)?;
                let mut header = header_for(&meta, tar::EntryType::Directory, 0);
                self.builder
                    .append_data(&mut header, &child_rel, io::empty())
                    .with_context(|| format!("cannot add {} to the archive", path.display()))?;
                self.walk(root, &child_rel)?;
            } else if meta.is_file() {
                self.count(root)?;
                self.data_bytes = self.data_bytes.saturating_add(meta.len());
                if self.data_bytes > MAX_ARCHIVE_BYTES {
                    bail!(too_large(root));
                }
                let file =
                    File::open(&path).with_context(|| format!("cannot read {}", path.display()))?;
                let mut header = header_for(&meta, tar::EntryType::Regular, meta.len());
                self.builder
                    .append_data(&mut header, &child_rel, file)
                    .with_context(|| format!("cannot add {} to the archive", path.display()))?;
            } else {
                self.skipped.push(child_rel.to_string_lossy().into_owned());
            }
        }
        Ok(())
    }

    fn count(&mut self, root: &Path) -> Result<()> {
        self.entries += 1;
        if self.entries > MAX_ENTRIES {
            bail!(
                "{} holds too many files and directories: the limit is {MAX_ENTRIES}",
                root.display()
            );
        }
        Ok(())
    }
}

/// A header carrying the entry's type, size, permissions and modification time; the path and
/// checksum are filled in by `append_data`.
fn header_for(meta: &Metadata, kind: tar::EntryType, size: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(kind);
    header.set_size(size);
    header.set_mode(mode(meta, kind));
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs());
    header.set_mtime(mtime);
    header
}

#[cfg(unix)]
fn mode(meta: &Metadata, _kind: tar::EntryType) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o7777
}

#[cfg(not(unix))]
fn mode(_meta: &Metadata, kind: tar::EntryType) -> u32 {
    if kind == tar::EntryType::Directory {
        0o755
    } else {
        0o644
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn temp_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("hangar-pack-{}", uuid::Uuid::new_v4()));
        fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {dir:?}: {e}"));
        dir
    }

    fn write(path: &Path, content: &str) {
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).unwrap_or_else(|e| panic!("mkdir {parent:?}: {e}"));
        }
        fs::write(path, content).unwrap_or_else(|e| panic!("write {path:?}: {e}"));
    }

    /// `(path, is_dir, content)` of every entry, in archive order.
    fn entries(bytes: &[u8]) -> Vec<(String, bool, String)> {
        let mut archive = tar::Archive::new(bytes);
        let mut out = Vec::new();
        for entry in archive.entries().unwrap_or_else(|e| panic!("bad tar: {e}")) {
            let mut entry = entry.unwrap_or_else(|e| panic!("bad entry: {e}"));
            // Directories may or may not carry a trailing slash; both mean the same.
            let path = String::from_utf8_lossy(&entry.path_bytes())
                .trim_end_matches('/')
                .to_owned();
            let is_dir = entry.header().entry_type() == tar::EntryType::Directory;
            let mut content = String::new();
            entry
                .read_to_string(&mut content)
                .unwrap_or_else(|e| panic!("read {path}: {e}"));
            out.push((path, is_dir, content));
        }
        out
    }

    #[test]
    fn packs_relative_paths_and_skips_terraform_dirs() -> Result<()> {
        let dir = temp_dir();
        write(&dir.join("main.tf"), "resource {}");
        write(&dir.join("scripts/setup.sh"), "echo hi");
        write(&dir.join(".terraform/providers/p"), "binary");
        write(&dir.join("modules/.terraform/x"), "cache");
        write(&dir.join(".terraform.lock.hcl"), "lock");
        let packed = pack_dir(&dir)?;
        let got = entries(&packed.bytes);
        let paths: Vec<&str> = got.iter().map(|(p, _, _)| p.as_str()).collect();
        assert_eq!(
            paths,
            [
                ".terraform.lock.hcl",
                "main.tf",
                "modules",
                "scripts",
                "scripts/setup.sh"
            ]
        );
        assert!(got.iter().all(|(p, _, _)| !p.starts_with('/')));
        assert!(got.iter().any(|(p, d, _)| p == "scripts" && *d));
        assert!(
            got.iter()
                .any(|(p, _, c)| p == "scripts/setup.sh" && c == "echo hi")
        );
        assert!(packed.skipped.is_empty());
        fs::remove_dir_all(&dir).ok();
        Ok(())
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_are_skipped_not_followed() -> Result<()> {
        let dir = temp_dir();
        write(&dir.join("apply.json"), "{}");
        std::os::unix::fs::symlink("/etc/passwd", dir.join("passwd"))?;
        let packed = pack_dir(&dir)?;
        let paths: Vec<String> = entries(&packed.bytes)
            .into_iter()
            .map(|(p, _, _)| p)
            .collect();
        assert_eq!(paths, ["apply.json"]);
        assert_eq!(packed.skipped, ["passwd"]);
        fs::remove_dir_all(&dir).ok();
        Ok(())
    }

    #[test]
    fn a_file_is_not_a_template_directory() {
        let dir = temp_dir();
        write(&dir.join("f"), "x");
        assert!(pack_dir(&dir.join("f")).is_err());
        assert!(pack_dir(&dir.join("missing")).is_err());
        fs::remove_dir_all(&dir).ok();
    }
}
