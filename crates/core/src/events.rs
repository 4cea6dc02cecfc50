//! Events between replicas (00 "Events between replicas"). Areas add variants; receivers
//! re-read state from the database, so a lost event only delays work.

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    /// A user's keys were revoked (logout, password change, delete).
    UserKeysRevoked { id: Uuid },
    /// An organization was soft-deleted.
    OrganizationDeleted { id: Uuid },
}

/// Publish after commit; subscribe for a fan-out receiver.
pub trait EventBus: Send + Sync + 'static {
    fn publish(&self, event: Event);
    fn subscribe(&self) -> broadcast::Receiver<Event>;
}

/// The single-process bus used with SQLite.
#[derive(Debug, Clone)]
pub struct LocalEventBus(broadcast::Sender<Event>);

impl LocalEventBus {
    pub fn new() -> Self {
        Self(broadcast::channel(1024).0)
    }
}

impl Default for LocalEventBus {
    fn default() -> Self {
        Self::new()
    }
}

impl EventBus for LocalEventBus {
    fn publish(&self, event: Event) {
        // No receivers is fine: nobody is waiting.
        let _ = self.0.send(event);
    }

    fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.0.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn local_bus_fans_out() {
        let bus = LocalEventBus::new();
        let mut a = bus.subscribe();
        let id = Uuid::new_v4();
        bus.publish(Event::OrganizationDeleted { id });
        assert_eq!(a.recv().await.unwrap(), Event::OrganizationDeleted { id });
        let json = serde_json::to_string(&Event::UserKeysRevoked { id }).unwrap();
        assert!(json.contains("\"kind\":\"user_keys_revoked\""));
    }
}
