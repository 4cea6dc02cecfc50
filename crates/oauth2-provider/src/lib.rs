//! The OAuth2 authorization server: PKCE, RFC 8707/8414/9728/7591/7009 (03-oauth2-mcp.md).
//!
//! This crate is reserved in the workspace layout of `docs/ARCHITECTURE.md`; its area has
//! not been built yet, so it exports nothing. See `docs/status.md`.
