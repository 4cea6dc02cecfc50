//! Identity: users, organizations, members, groups, API keys, login and the prebuilds system
//! user (02-platform.md). Pure domain code: storage is reached only through [`IdentityStore`].

pub mod apikey;
pub mod error;
pub mod model;
pub mod password;
pub mod service;
pub mod store;
pub mod validate;

pub use error::IdentityError;
pub use model::*;
pub use service::{Identity, IdentityConfig};
pub use store::IdentityStore;
