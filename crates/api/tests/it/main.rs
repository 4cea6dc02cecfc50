//! HTTP tests against the real router on 127.0.0.1, each on SQLite and PostgreSQL.

mod agents;
mod auth;
mod lifecycle;
mod oauth2;
mod oauth2_flow;
mod openapi;
mod orgs;
mod platform;
mod tokens;
mod users;
mod workspaces;
