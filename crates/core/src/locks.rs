//! PostgreSQL advisory lock ids (00's registry). Never reuse a number.

pub const MIGRATIONS: i64 = 1;
pub const FIRST_USER: i64 = 2;
pub const TEST_TEMPLATE_DATABASE: i64 = 3;
pub const PREBUILDS_RECONCILE: i64 = 7;
pub const HUNG_PROVISIONER_JOBS: i64 = 20;
pub const WORKSPACE_LIFECYCLE_EXECUTOR: i64 = 21;
pub const OAUTH2_SWEEP: i64 = 30;
/// Two-key (class, `hashtext(key)`) transaction locks: the two-key form never conflicts with
/// the one-key ids above. One user's grants of one app (issue and rotation serialise, so
/// one pair stays live), and one token family (rotation and revocation serialise).
pub const OAUTH2_GRANT_CLASS: i32 = 40;
pub const OAUTH2_FAMILY_CLASS: i32 = 41;
pub const VAPID_KEY_GENERATION: i64 = 60;
