//! Store tests, each run on SQLite and PostgreSQL.

mod fixtures;
mod identity;
mod schema;
mod workspaces_schema;
