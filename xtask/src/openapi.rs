//! `cargo xtask openapi [--check]`: the committed copy of the OpenAPI document.
//!
//! The committed copy documents every route (`document(None)`), including those behind
//! experiments, so a reviewer sees the whole surface change in one diff.

use crate::{check_status, sync_file};
use std::path::Path;
use std::process::ExitCode;

pub fn run(root: &Path, check: bool) -> anyhow::Result<ExitCode> {
    let path = root.join("docs/api/openapi.json");
    let text = hangar_api::openapi::document(None);
    let fresh = sync_file(root, &path, &text, check, "cargo xtask openapi")?;
    Ok(check_status(fresh, check))
}
