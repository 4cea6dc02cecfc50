//! A read-through cache of the two authentication reads (key + user, auth roles), used only
//! with SQLite: one process owns the file (the data-dir lock), so every write passes
//! through this `Db` and can invalidate the cache. PostgreSQL replicas cannot see each
//! other's writes, so there it is off.
//!
//! Correctness rests on a generation counter bumped *after* every write statement and
//! every commit. A reader notes the generation before it queries and stores its result
//! under that generation; an entry is used only while the generation is unchanged, so any
//! write that might not be in the result makes the entry stale.

use hangar_identity::model::{AuthRoles, KeyAndUser};
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use uuid::Uuid;

/// Entries kept per map before it is emptied (a bound, not an LRU: hits refill it).
const MAX_ENTRIES: usize = 10_000;

#[derive(Default)]
pub struct AuthCache {
    generation: AtomicU64,
    keys: Mutex<HashMap<String, (u64, KeyAndUser)>>,
    roles: Mutex<HashMap<Uuid, (u64, AuthRoles)>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl AuthCache {
    /// Marks every entry stale; called after each write and commit.
    pub fn bump(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// The generation to store a result under; read it *before* querying.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    pub fn key(&self, id: &str) -> Option<KeyAndUser> {
        let g = self.generation();
        lock(&self.keys)
            .get(id)
            .filter(|(at, _)| *at == g)
            .map(|(_, v)| v.clone())
    }

    pub fn put_key(&self, id: &str, at: u64, value: KeyAndUser) {
        let mut m = lock(&self.keys);
        if m.len() >= MAX_ENTRIES {
            m.clear();
        }
        m.insert(id.to_string(), (at, value));
    }

    pub fn roles(&self, user: Uuid) -> Option<AuthRoles> {
        let g = self.generation();
        lock(&self.roles)
            .get(&user)
            .filter(|(at, _)| *at == g)
            .map(|(_, v)| v.clone())
    }

    pub fn put_roles(&self, user: Uuid, at: u64, value: AuthRoles) {
        let mut m = lock(&self.roles);
        if m.len() >= MAX_ENTRIES {
            m.clear();
        }
        m.insert(user, (at, value));
    }
}
