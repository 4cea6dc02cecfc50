//! Well-known ids.

use uuid::{Uuid, uuid};

/// The prebuilds system user, created by the `identity_seed` migration (02 §2.5).
pub const PREBUILDS_SYSTEM_USER_ID: Uuid = uuid!("c42fdf75-3097-471c-8c33-fb52454d81c0");

/// A new random (v4) id.
pub fn new_id() -> Uuid {
    Uuid::new_v4()
}
