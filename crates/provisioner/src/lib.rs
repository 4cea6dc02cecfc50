//! The echo and Terraform provisioners and the daemon loop (04-workspaces.md).
//!
//! This crate is reserved in the workspace layout of `docs/ARCHITECTURE.md`; its area has
//! not been built yet, so it exports nothing. See `docs/status.md`.
