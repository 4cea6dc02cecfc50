//! A template source archive, unpacked in memory (04 §8): only regular files and
//! directories, no absolute path, no `..` component, no NUL in a name, at most 10 000 entries.
//! Nothing is ever written to disk.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;

use tar::EntryType;

/// The most entries an archive may hold.
pub const MAX_ENTRIES: usize = 10_000;

/// Why an archive was refused. The `Display` of [`ArchiveError::Entry`] is the `detail` of
/// 04 §8 (`entry "<name>": <reason>`) and the error of a job whose archive is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArchiveError {
    #[error("entry \"{name}\": {reason}")]
    Entry {
        name: String,
        reason: EntryViolation,
    },
    /// The bytes are not a readable tar stream (bad checksum, truncated entry, …).
    #[error("malformed tar archive: {0}")]
    Malformed(String),
}

/// What is wrong with one entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryViolation {
    #[error("absolute paths are not allowed")]
    AbsolutePath,
    #[error("path escapes the archive")]
    EscapesArchive,
    #[error("name contains a NUL byte")]
    NulInName,
    #[error("name is not valid UTF-8")]
    NotUtf8,
    #[error("name is empty")]
    EmptyName,
    #[error("entry type {0} is not allowed; only regular files and directories are")]
    UnsupportedType(&'static str),
    #[error("the archive has more than {MAX_ENTRIES} entries")]
    TooManyEntries,
    #[error("truncated entry: {expected} bytes declared, {actual} present")]
    Truncated { expected: u64, actual: u64 },
}

/// An unpacked archive: files by normalised path (no leading `./`, no trailing `/`, `/`
/// separated) and the directories it declares. A later entry of the same path replaces an
/// earlier one, as `tar -x` would.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Archive {
    files: BTreeMap<String, Vec<u8>>,
    dirs: BTreeSet<String>,
}

impl Archive {
    /// Reads and checks a tar stream (ustar, GNU long names and PAX path headers are
    /// understood; PAX global headers are skipped).
    pub fn from_tar(bytes: &[u8]) -> Result<Archive, ArchiveError> {
        let mut reader = tar::Archive::new(bytes);
        let entries = reader
            .entries()
            .map_err(|e| ArchiveError::Malformed(e.to_string()))?;
        let mut archive = Archive::default();
        let mut count = 0usize;
        for entry in entries {
            let mut entry = entry.map_err(|e| ArchiveError::Malformed(e.to_string()))?;
            let kind = entry.header().entry_type();
            if kind.is_pax_global_extensions() {
                continue;
            }
            let raw_name = entry.path_bytes().into_owned();
            let shown = String::from_utf8_lossy(&raw_name).into_owned();
            let fail = |reason| ArchiveError::Entry {
                name: shown.clone(),
                reason,
            };
            count += 1;
            if count > MAX_ENTRIES {
                return Err(fail(EntryViolation::TooManyEntries));
            }
            let path = normalize(&raw_name).map_err(fail)?;
            match kind {
                EntryType::Regular | EntryType::Continuous => {
                    let Some(path) = path else {
                        return Err(fail(EntryViolation::EmptyName));
                    };
                    let expected = entry.size();
                    let mut data =
                        Vec::with_capacity(usize::try_from(expected.min(1 << 20)).unwrap_or(0));
                    entry
                        .read_to_end(&mut data)
                        .map_err(|e| ArchiveError::Malformed(e.to_string()))?;
                    let actual = data.len() as u64;
                    if actual != expected {
                        return Err(fail(EntryViolation::Truncated { expected, actual }));
                    }
                    archive.files.insert(path, data);
                }
                EntryType::Directory => {
                    if let Some(path) = path {
                        archive.dirs.insert(path);
                    }
                }
                other => return Err(fail(EntryViolation::UnsupportedType(type_name(other)))),
            }
        }
        Ok(archive)
    }

    /// The bytes of the file at `path` (`./` prefixes and doubled slashes are ignored).
    pub fn file(&self, path: &str) -> Option<&[u8]> {
        match normalize(path.as_bytes()) {
            Ok(Some(p)) => self.files.get(&p).map(Vec::as_slice),
            _ => None,
        }
    }

    /// Every file, by path, in path order.
    pub fn files(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.files.iter().map(|(p, d)| (p.as_str(), d.as_slice()))
    }

    /// Every declared directory, in path order.
    pub fn dirs(&self) -> impl Iterator<Item = &str> {
        self.dirs.iter().map(String::as_str)
    }

    /// The number of files.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }
}

/// Checks a raw entry name and returns it normalised (`None` for the root, e.g. `./`).
fn normalize(raw: &[u8]) -> Result<Option<String>, EntryViolation> {
    if raw.contains(&0) {
        return Err(EntryViolation::NulInName);
    }
    let name = std::str::from_utf8(raw).map_err(|_| EntryViolation::NotUtf8)?;
    if name.starts_with('/') {
        return Err(EntryViolation::AbsolutePath);
    }
    let mut parts = Vec::new();
    for part in name.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(EntryViolation::EscapesArchive),
            p => parts.push(p),
        }
    }
    if parts.is_empty() {
        return Ok(None);
    }
    Ok(Some(parts.join("/")))
}

fn type_name(kind: EntryType) -> &'static str {
    match kind {
        EntryType::Link => "hard link",
        EntryType::Symlink => "symlink",
        EntryType::Char => "character device",
        EntryType::Block => "block device",
        EntryType::Fifo => "fifo",
        EntryType::GNUSparse => "sparse file",
        EntryType::XHeader | EntryType::XGlobalHeader => "pax header",
        EntryType::GNULongName | EntryType::GNULongLink => "GNU long name",
        _ => "unknown",
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Builds a tar of `(path, contents)` regular files with the `tar` crate.
    pub(crate) fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, data) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_entry_type(EntryType::Regular);
            b.append_data(&mut h, path, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    /// A tar with one entry whose name bytes are written raw into an old-style header,
    /// bypassing the checks of `Header::set_path`.
    fn tar_with_raw_name(name: &[u8], kind: EntryType, data: &[u8]) -> Vec<u8> {
        let mut h = tar::Header::new_old();
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(kind);
        h.set_cksum();
        let mut b = tar::Builder::new(Vec::new());
        b.append(&h, data).unwrap();
        b.into_inner().unwrap()
    }

    #[test]
    fn reads_files_and_dirs() {
        let mut b = tar::Builder::new(Vec::new());
        let mut dir = tar::Header::new_gnu();
        dir.set_entry_type(EntryType::Directory);
        dir.set_size(0);
        dir.set_mode(0o755);
        b.append_data(&mut dir, "./sub/", std::io::empty()).unwrap();
        let mut f = tar::Header::new_gnu();
        f.set_size(2);
        f.set_mode(0o644);
        b.append_data(&mut f, "./sub/a.json", &b"{}"[..]).unwrap();
        let long = format!("{}/b.txt", "x".repeat(150));
        let mut f = tar::Header::new_gnu();
        f.set_size(1);
        f.set_mode(0o644);
        b.append_data(&mut f, &long, &b"b"[..]).unwrap();
        let a = Archive::from_tar(&b.into_inner().unwrap()).unwrap();
        assert_eq!(a.file("sub/a.json"), Some(&b"{}"[..]));
        assert_eq!(a.file("./sub//a.json"), Some(&b"{}"[..]));
        assert_eq!(a.file(&long), Some(&b"b"[..]));
        assert_eq!(a.file("missing"), None);
        assert_eq!(a.dirs().collect::<Vec<_>>(), ["sub"]);
        assert_eq!(a.len(), 2);
    }

    #[test]
    fn empty_input_is_an_empty_archive() {
        assert!(Archive::from_tar(&[]).unwrap().is_empty());
    }

    #[test]
    fn rejects_traversal() {
        let err = Archive::from_tar(&tar_with_raw_name(b"../evil", EntryType::Regular, b"x"))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"entry "../evil": path escapes the archive"#
        );
        let err = Archive::from_tar(&tar_with_raw_name(b"a/../../b", EntryType::Regular, b""))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"entry "a/../../b": path escapes the archive"#
        );
    }

    #[test]
    fn rejects_absolute_paths() {
        let err = Archive::from_tar(&tar_with_raw_name(b"/etc/passwd", EntryType::Regular, b""))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"entry "/etc/passwd": absolute paths are not allowed"#
        );
    }

    #[test]
    fn rejects_symlinks_and_other_types() {
        let err =
            Archive::from_tar(&tar_with_raw_name(b"link", EntryType::Symlink, b"")).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"entry "link": entry type symlink is not allowed; only regular files and directories are"#
        );
        let err = Archive::from_tar(&tar_with_raw_name(b"hard", EntryType::Link, b"")).unwrap_err();
        assert!(matches!(
            err,
            ArchiveError::Entry {
                reason: EntryViolation::UnsupportedType("hard link"),
                ..
            }
        ));
    }

    #[test]
    fn rejects_nul_in_a_pax_path() {
        let mut b = tar::Builder::new(Vec::new());
        let record = b"12 path=a\0b\n";
        let mut x = tar::Header::new_ustar();
        x.set_path("PaxHeader").unwrap();
        x.set_entry_type(EntryType::XHeader);
        x.set_size(record.len() as u64);
        x.set_cksum();
        b.append(&x, &record[..]).unwrap();
        let mut h = tar::Header::new_ustar();
        h.set_path("plain").unwrap();
        h.set_size(0);
        h.set_cksum();
        b.append(&h, std::io::empty()).unwrap();
        let err = Archive::from_tar(&b.into_inner().unwrap()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "entry \"a\u{0}b\": name contains a NUL byte"
        );
    }

    #[test]
    fn rejects_more_than_max_entries() {
        let names: Vec<String> = (0..=MAX_ENTRIES).map(|i| format!("f{i}")).collect();
        let files: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), &b""[..])).collect();
        let err = Archive::from_tar(&tar_of(&files)).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("entry \"f{MAX_ENTRIES}\": the archive has more than 10000 entries")
        );
        assert_eq!(
            Archive::from_tar(&tar_of(&files[..MAX_ENTRIES]))
                .unwrap()
                .len(),
            MAX_ENTRIES
        );
    }

    #[test]
    fn rejects_garbage_and_truncation() {
        let err = Archive::from_tar(&[1u8; 512]).unwrap_err();
        assert!(matches!(err, ArchiveError::Malformed(_)), "{err}");
        let full = tar_of(&[("a", &[7u8; 1000][..])]);
        let err = Archive::from_tar(&full[..512 + 100]).unwrap_err();
        assert!(
            matches!(
                err,
                ArchiveError::Entry {
                    reason: EntryViolation::Truncated { .. },
                    ..
                }
            ) || matches!(err, ArchiveError::Malformed(_)),
            "{err}"
        );
    }

    #[test]
    fn skips_pax_global_headers() {
        let mut b = tar::Builder::new(Vec::new());
        let data = b"52 comment=0123456789012345678901234567890123456789\n";
        let mut h = tar::Header::new_ustar();
        h.set_path("pax_global_header").unwrap();
        h.set_entry_type(EntryType::XGlobalHeader);
        h.set_size(data.len() as u64);
        h.set_cksum();
        b.append(&h, &data[..]).unwrap();
        let mut f = tar::Header::new_ustar();
        f.set_size(1);
        f.set_mode(0o644);
        b.append_data(&mut f, "a", &b"a"[..]).unwrap();
        let a = Archive::from_tar(&b.into_inner().unwrap()).unwrap();
        assert_eq!(a.files().map(|(p, _)| p).collect::<Vec<_>>(), ["a"]);
    }
}
