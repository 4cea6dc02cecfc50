//! PostgreSQL advisory lock ids (00's registry). Never reuse a number.

pub const MIGRATIONS: i64 = 1;
pub const FIRST_USER: i64 = 2;
pub const TEST_TEMPLATE_DATABASE: i64 = 3;
pub const PREBUILDS_RECONCILE: i64 = 7;
pub const HUNG_PROVISIONER_JOBS: i64 = 20;
pub const WORKSPACE_LIFECYCLE_EXECUTOR: i64 = 21;
pub const OAUTH2_SWEEP: i64 = 30;
pub const VAPID_KEY_GENERATION: i64 = 60;
