//! Provisioning (04-workspaces.md §3, §6.5–6.6, §8): what a template turns into, and the daemon
//! that runs provisioner jobs.
//!
//! - [`model`]: the data shapes a provisioner returns (resources, agents, apps, parameters,
//!   variables, presets, logs) and `ParseComplete` / `PlanComplete` / `ApplyComplete`.
//! - [`archive`]: a template tar unpacked and checked in memory ([`Archive::from_tar`]).
//! - [`provisioner`]: the dyn-compatible [`Provisioner`] trait, its requests, [`LogSink`],
//!   [`CancelToken`] and [`ProvisionError`].
//! - [`echo`]: the `echo` provisioner, which answers from JSON files in the archive.
//! - [`daemon`]: the job wire shapes of 04 §4.8, the [`JobSource`] trait and the daemon loop
//!   [`daemon::run`].
//!
//! No SQL and no HTTP here: the in-process job source lives with the store, the HTTP one in
//! `bin/hangar`.

pub mod archive;
pub mod daemon;
pub mod echo;
pub mod model;
pub mod provisioner;

pub use archive::{Archive, ArchiveError};
pub use daemon::{
    AcquiredJob, CompletedJob, DaemonConfig, FailedJob, JobSource, JobType, SourceError,
};
pub use echo::EchoProvisioner;
pub use provisioner::{
    ApplyRequest, BoxFuture, CancelToken, JobMetadata, LogSink, PlanRequest, ProvisionError,
    Provisioner,
};
