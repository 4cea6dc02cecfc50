//! `GET …/logs` of template versions and builds (04 §4.5): a page of logs after an id, or,
//! with `follow`, a WebSocket that sends the backlog and then each new log as one JSON text
//! frame, and closes with 1000 once the job is completed and every log is sent.

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{QueryParams, check_query};
use crate::views_ws::LogJson;
use axum::Json;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::response::{IntoResponse, Response};
use hangar_core::wire::Validation;
use hangar_workspaces::model::JobLog;
use hangar_workspaces::store::WorkspaceStore;
use serde_json::{Value, json};
use std::time::Duration;
use uuid::Uuid;

/// How often a follower looks for new logs. The in-process daemons write logs every 250 ms,
/// so this keeps the delay of a streamed line near that of the writer.
const FOLLOW_POLL: Duration = Duration::from_millis(250);

/// The handler body shared by version and build logs; the caller has authorized the read.
pub async fn respond(
    state: AppState,
    job: Uuid,
    q: &QueryParams,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> ApiResult<Response> {
    let mut errors = vec![];
    let after = match q.get("after") {
        None => 0,
        Some(v) => v.parse::<i64>().unwrap_or_else(|_| {
            errors.push(Validation::new("after", "must be an integer log id"));
            0
        }),
    };
    if q.0.contains_key("follow") {
        let Ok(upgrade) = upgrade else {
            return Err(ApiError::bad_request(
                "Follow requires a WebSocket upgrade.",
            ));
        };
        check_query(errors)?;
        return Ok(upgrade.on_upgrade(move |socket| follow(state, job, after, socket)));
    }
    check_query(errors)?;
    let logs = state.workspaces.logs(job, after).await?;
    Ok(Json(json!(logs.iter().map(log_json).collect::<Vec<_>>())).into_response())
}

fn log_json(l: &JobLog) -> Value {
    json!(LogJson {
        id: l.id,
        created_at: l.created_at,
        log_source: l.log_source,
        log_level: l.log_level,
        stage: &l.stage,
        output: &l.output,
    })
}

/// Streams until the job is completed and drained, the client goes away, or the database
/// fails (then the socket closes with 1011 so the client re-reads the job).
async fn follow(state: AppState, job: Uuid, mut after: i64, mut socket: WebSocket) {
    let code = loop {
        // Read the job before its logs: logs written before completion are then all seen
        // by the read that follows the one observing `completed_at`.
        let completed = match state.workspaces.store().job_by_id(job).await {
            Ok(Some(j)) => j.completed_at.is_some(),
            Ok(None) => break close_code::NORMAL,
            Err(_) => break close_code::ERROR,
        };
        let logs = match state.workspaces.logs(job, after).await {
            Ok(l) => l,
            Err(_) => break close_code::ERROR,
        };
        for l in &logs {
            after = after.max(l.id);
            if socket
                .send(Message::Text(log_json(l).to_string().into()))
                .await
                .is_err()
            {
                return;
            }
        }
        if completed {
            break close_code::NORMAL;
        }
        tokio::select! {
            () = tokio::time::sleep(FOLLOW_POLL) => {}
            msg = socket.recv() => match msg {
                // The client closed or the connection broke.
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(_)) => {}
            },
        }
    };
    let _ = socket
        .send(Message::Close(Some(CloseFrame {
            code,
            reason: "".into(),
        })))
        .await;
}
