//! Store tests, each run on SQLite and PostgreSQL.

mod fixtures;
mod identity;
mod jobs;
mod loops;
mod oauth2;
mod schema;
mod workspaces_schema;
