//! A text description of the live schema, for the snapshot and parity tests and
//! `cargo xtask codegen`.

use crate::Db;
use hangar_core::StoreError;
use std::collections::BTreeSet;

/// Tables (with columns), views, indexes and triggers, one per line, sorted.
pub async fn describe(db: &Db) -> Result<String, StoreError> {
    let mut lines = BTreeSet::new();
    let c = db.ctx();
    if c.is_postgres() {
        for r in db
            .query(
                "SELECT c.table_name::text AS t, c.column_name::text AS col, \
                   CASE WHEN c.data_type = 'USER-DEFINED' THEN c.udt_name::text ELSE c.data_type::text END AS ty, \
                   c.is_nullable::text AS nullable \
                 FROM information_schema.columns c JOIN information_schema.tables t \
                   ON t.table_name = c.table_name AND t.table_schema = c.table_schema \
                 WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE'",
                vec![],
            )
            .await?
        {
            let null = if r.string("nullable")? == "YES" { "NULL" } else { "NOT NULL" };
            lines.insert(format!("table {} column {} {} {null}", r.string("t")?, r.string("col")?, r.string("ty")?));
        }
        for r in db.query("SELECT table_name::text AS v FROM information_schema.views WHERE table_schema = current_schema()", vec![]).await? {
            lines.insert(format!("view {}", r.string("v")?));
        }
        for r in db
            .query(
                "SELECT i.indexname::text AS i, i.tablename::text AS t FROM pg_indexes i \
                 WHERE i.schemaname = current_schema() \
                   AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conname = i.indexname)",
                vec![],
            )
            .await?
        {
            lines.insert(format!("index {} on {}", r.string("i")?, r.string("t")?));
        }
        for r in db
            .query(
                "SELECT DISTINCT trigger_name::text AS g, event_object_table::text AS t FROM information_schema.triggers \
                 WHERE trigger_schema = current_schema()",
                vec![],
            )
            .await?
        {
            lines.insert(format!("trigger {} on {}", r.string("g")?, r.string("t")?));
        }
    } else {
        let objects = db
            .query(
                "SELECT type, name, tbl_name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY name",
                vec![],
            )
            .await?;
        for o in objects {
            let (kind, name, table) = (o.string("type")?, o.string("name")?, o.string("tbl_name")?);
            match kind.as_str() {
                "table" => {
                    for col in db
                        // `table_xinfo` also lists generated columns (`hidden` 2/3), which
                        // `table_info` hides; PostgreSQL's information_schema lists them too.
                        .query(&format!("SELECT name, type, \"notnull\" AS nn FROM pragma_table_xinfo('{name}') WHERE hidden <> 1"), vec![])
                        .await?
                    {
                        let null = if col.i64("nn")? == 1 { "NOT NULL" } else { "NULL" };
                        lines.insert(format!("table {name} column {} {} {null}", col.string("name")?, col.string("type")?));
                    }
                }
                "view" => {
                    lines.insert(format!("view {name}"));
                }
                "index" => {
                    lines.insert(format!("index {name} on {table}"));
                }
                "trigger" => {
                    lines.insert(format!("trigger {name} on {table}"));
                }
                _ => {}
            }
        }
    }
    let mut out: String = lines.into_iter().collect::<Vec<_>>().join("\n");
    out.push('\n');
    Ok(out)
}

/// The backend-independent part of a description: object and column names without types.
///
/// A PostgreSQL `BEFORE INSERT OR UPDATE` trigger is a pair `<name>_insert` / `<name>_update` on
/// SQLite (04 §2.9, 05 §2.4), so a trigger name ending in `_insert` or `_update` counts as its
/// base name on both sides.
pub fn names(description: &str) -> Vec<String> {
    let mut v: Vec<String> = description
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let parts: Vec<&str> = l.split(' ').collect();
            match parts.as_slice() {
                ["table", t, "column", c, ..] => format!("table {t} column {c}"),
                ["trigger", g, "on", t] => {
                    let base = g
                        .strip_suffix("_insert")
                        .or_else(|| g.strip_suffix("_update"))
                        .unwrap_or(g);
                    format!("trigger {base} on {t}")
                }
                _ => l.to_string(),
            }
        })
        .collect();
    v.sort();
    v.dedup();
    v
}
