//! Presets, the prebuilds reconciler planner, claims and schedules (05-prebuilds.md).
//!
//! This crate is reserved in the workspace layout of `docs/ARCHITECTURE.md`; its area has
//! not been built yet, so it exports nothing. See `docs/status.md`.
