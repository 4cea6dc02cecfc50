//! Notification templates, enqueue, the notifier and its delivery methods (06-audit-notify-webpush.md).
//!
//! This crate is reserved in the workspace layout of `docs/ARCHITECTURE.md`; its area has
//! not been built yet, so it exports nothing. See `docs/status.md`.
