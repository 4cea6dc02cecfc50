//! The `Provisioner` trait of 04 §3 and what its calls take: requests, a log sink and a cancel
//! token.
//!
//! Methods return [`BoxFuture`] (a boxed `Send` future) rather than being `async fn`, so the
//! trait is dyn-compatible: the daemon holds its provisioners as `Arc<dyn Provisioner>` and
//! runs each job's work as its own tokio task (which is how a panic is caught at the job
//! boundary, 04 §8).

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tokio::sync::{mpsc, watch};
use uuid::Uuid;

use crate::archive::Archive;
use crate::model::{
    ApplyComplete, LogLevel, LogLine, NameValue, ParseComplete, PlanComplete, Transition,
};

/// A boxed, `Send` future borrowing from `'a`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A provisioner: turns a template archive into variables, a plan and applied resources.
///
/// Every call may stream log lines into the sink. `plan`, `apply` — and, unlike the sketch in
/// 04 §3, `parse` too — take a [`CancelToken`]: a provisioner should return promptly (usually
/// `Err(ProvisionError::canceled())`) once it is canceled; the daemon aborts it after a grace.
pub trait Provisioner: Send + Sync {
    /// The `provisioner_type` this provisioner serves (`echo`, `terraform`).
    fn kind(&self) -> &'static str;

    fn parse<'a>(
        &'a self,
        archive: &'a Archive,
        logs: &'a LogSink,
        cancel: &'a CancelToken,
    ) -> BoxFuture<'a, Result<ParseComplete, ProvisionError>>;

    fn plan<'a>(
        &'a self,
        archive: &'a Archive,
        request: PlanRequest,
        logs: &'a LogSink,
        cancel: &'a CancelToken,
    ) -> BoxFuture<'a, Result<PlanComplete, ProvisionError>>;

    fn apply<'a>(
        &'a self,
        archive: &'a Archive,
        request: ApplyRequest,
        logs: &'a LogSink,
        cancel: &'a CancelToken,
    ) -> BoxFuture<'a, Result<ApplyComplete, ProvisionError>>;
}

/// What a provisioner knows about the job besides its inputs (`data.coder_workspace` and
/// friends). The same shape is the `metadata` of an acquired job (04 §4.8); fields that do not
/// apply (e.g. the workspace of a template import) are `None` / empty.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct JobMetadata {
    pub access_url: String,
    pub workspace_id: Option<Uuid>,
    pub workspace_name: String,
    pub workspace_owner_id: Option<Uuid>,
    pub workspace_owner_name: String,
    pub template_id: Option<Uuid>,
    pub template_name: String,
    pub template_version_name: String,
    pub workspace_build_id: Option<Uuid>,
    pub is_prebuild: bool,
    pub is_prebuild_claim: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PlanRequest {
    pub transition: Transition,
    /// Rich parameter values; parameters missing here take their defaults.
    pub parameters: Vec<NameValue>,
    pub variable_values: Vec<NameValue>,
    pub metadata: JobMetadata,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ApplyRequest {
    pub transition: Transition,
    pub parameters: Vec<NameValue>,
    pub variable_values: Vec<NameValue>,
    pub metadata: JobMetadata,
    /// The previous build's provisioner state (empty for a first build).
    pub state: Vec<u8>,
    /// Agent name → token to keep. The server fills it only for a `start` whose previous
    /// build was a successful `start` (04 §6.7); a provisioner reuses what it is given.
    pub previous_agent_tokens: BTreeMap<String, Uuid>,
}

/// Why a provisioner call failed. `message` becomes the job's `error`, `error_code` its
/// `error_code`; `state`, when set, is stored on the failed build instead of the previous one
/// (e.g. processes an apply started before it failed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ProvisionError {
    pub message: String,
    pub error_code: Option<String>,
    pub state: Option<Vec<u8>>,
}

impl ProvisionError {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            error_code: None,
            state: None,
        }
    }

    pub fn with_code(mut self, code: impl Into<String>) -> Self {
        self.error_code = Some(code.into());
        self
    }

    pub fn with_state(mut self, state: Vec<u8>) -> Self {
        self.state = Some(state);
        self
    }

    /// The error a provisioner returns when it stops because it was canceled.
    pub fn canceled() -> Self {
        Self::new(CANCELED)
    }
}

/// The message of [`ProvisionError::canceled`].
pub const CANCELED: &str = "canceled";

/// A cloneable handle a provisioner writes log lines to. Lines are buffered (unbounded) until
/// the daemon sends them; writing after the daemon stopped listening drops the line.
#[derive(Debug, Clone)]
pub struct LogSink(mpsc::UnboundedSender<LogLine>);

impl LogSink {
    /// A sink and the receiver its lines arrive on.
    pub fn channel() -> (LogSink, mpsc::UnboundedReceiver<LogLine>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (LogSink(tx), rx)
    }

    pub fn log(&self, line: LogLine) {
        // The receiver is gone only when the job is over; a late line has nowhere to go.
        let _ = self.0.send(line);
    }

    pub fn write(&self, level: LogLevel, stage: &str, output: impl Into<String>) {
        self.log(LogLine::new(level, stage, output));
    }

    pub fn info(&self, stage: &str, output: impl Into<String>) {
        self.write(LogLevel::Info, stage, output);
    }
}

/// A cloneable cancellation flag: once [`cancel`](Self::cancel)led it stays canceled, and
/// every clone sees it.
#[derive(Debug, Clone)]
pub struct CancelToken(Arc<watch::Sender<bool>>);

impl Default for CancelToken {
    fn default() -> Self {
        Self::new()
    }
}

impl CancelToken {
    pub fn new() -> Self {
        Self(Arc::new(watch::Sender::new(false)))
    }

    pub fn cancel(&self) {
        self.0.send_replace(true);
    }

    pub fn is_canceled(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves once the token is canceled (at once if it already is).
    pub async fn canceled(&self) {
        let mut rx = self.0.subscribe();
        // The sender lives as long as `self`, so `wait_for` cannot fail while we wait.
        let _ = rx.wait_for(|c| *c).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn cancel_token_wakes_every_clone() {
        let token = CancelToken::new();
        let other = token.clone();
        assert!(!other.is_canceled());
        let waiter = tokio::spawn(async move { other.canceled().await });
        tokio::time::sleep(Duration::from_millis(5)).await;
        token.cancel();
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .unwrap()
            .unwrap();
        assert!(token.is_canceled());
        // Already canceled: resolves at once.
        token.canceled().await;
    }

    #[tokio::test]
    async fn log_sink_buffers_lines() {
        let (sink, mut rx) = LogSink::channel();
        sink.info("Planning", "hello");
        sink.clone().write(LogLevel::Error, "Planning", "bad");
        drop(sink);
        assert_eq!(rx.recv().await.unwrap().output, "hello");
        assert_eq!(rx.recv().await.unwrap().level, LogLevel::Error);
        assert!(rx.recv().await.is_none());
    }
}
