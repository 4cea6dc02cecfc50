//! Shared kernel of Hangar. Everything here is pure: no SQL, no HTTP.

pub mod clock;
pub mod error;
pub mod events;
pub mod experiments;
pub mod ids;
pub mod locks;
pub mod pagination;
pub mod rbac;
pub mod tx;
pub mod wire;

pub use clock::{Clock, ManualClock, SystemClock};
pub use error::StoreError;
pub use ids::PREBUILDS_SYSTEM_USER_ID;
pub use pagination::Pagination;
