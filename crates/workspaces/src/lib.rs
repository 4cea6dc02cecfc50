//! The workspace area (04-workspaces.md): files, templates and versions, provisioner jobs
//! and their queue, workspaces and builds, and the job completion rules. Pure domain code:
//! storage is reached through [`store::WorkspaceStore`], provisioning through
//! `hangar-provisioner`.

pub mod agents;
pub mod completion;
pub mod daemons;

pub mod error;
pub mod lifecycle;
pub mod metrics;
pub mod model;
pub mod parameters;
pub mod rules;
pub mod service;
pub mod store;

pub use error::WorkspaceError;
pub use service::Workspaces;
