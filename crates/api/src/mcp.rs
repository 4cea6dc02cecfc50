//! The MCP endpoint `/api/experimental/mcp/http` (03 §5.9): rmcp's Streamable HTTP server,
//! stateless (no sessions, JSON responses), behind an authentication layer that accepts only
//! header tokens. Tools run the domain services in-process as the caller, so REST's RBAC
//! applies unchanged.

use crate::AppState;
use crate::auth::request_ip;
use crate::error::ApiError;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hangar_identity::service::Caller;
use hangar_oauth2_provider::MCP_PATH;
use rmcp::ErrorData;
use rmcp::handler::server::ServerHandler;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
    ToolAnnotations,
};
use rmcp::service::{RequestContext, RoleServer};
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::time::Instant;

/// MCP request bodies are small JSON-RPC messages.
const MAX_BODY: usize = 1024 * 1024;

/// The rmcp service mounted at [`MCP_PATH`].
pub fn service(state: AppState) -> StreamableHttpService<HangarMcp, NeverSessionManager> {
    let url = &state.config.access_url;
    let mut hosts = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    if let Some(h) = url.host_str() {
        hosts.push(h.to_owned());
        if let Some(p) = url.port_or_known_default() {
            hosts.push(format!("{h}:{p}"));
        }
    }
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .with_sse_keep_alive(None)
        .with_max_request_body_bytes(MAX_BODY)
        .with_allowed_hosts(hosts)
        .disable_allowed_origins();
    StreamableHttpService::new(
        move || {
            Ok(HangarMcp {
                state: state.clone(),
            })
        },
        Arc::new(NeverSessionManager::default()),
        config,
    )
}

fn mcp_prm_url(state: &AppState) -> String {
    format!(
        "{}/.well-known/oauth-protected-resource{MCP_PATH}",
        state.config.base_url()
    )
}

fn challenge(state: &AppState, error: Option<&str>) -> ApiError {
    let mut c = format!(
        "Bearer realm=\"coder\", resource_metadata=\"{}\"",
        mcp_prm_url(state)
    );
    if let Some(e) = error {
        c.push_str(&format!(
            ", error=\"invalid_token\", error_description=\"{e}\""
        ));
    }
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "You are signed out or your session has expired. Please sign in again to continue.",
    )
    .header(header::WWW_AUTHENTICATE, &c)
}

/// Authentication of the MCP route, then 405 for GET and DELETE (stateless: no streams to
/// resume, no sessions to end).
pub async fn layer(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    // Only header tokens count here: a cookie or a query token would let any page the user
    // visits drive their tools (CORS allows every origin on this route).
    let Some(token) = crate::auth::header_token(req.headers()) else {
        return challenge(&state, None).into_response();
    };
    let ip = request_ip(&state, req.extensions(), req.headers());
    let auth = match state.identity.authenticate(&token, &ip.to_string()).await {
        Ok(Ok(a)) => a,
        Ok(Err(f)) => {
            return challenge(&state, Some("The access token is invalid or expired."))
                .detail(f.detail())
                .into_response();
        }
        Err(e) => return ApiError::from(e).into_response(),
    };
    if let Some(aud) = &auth.audience
        && !hangar_oauth2_provider::audience_covers(aud, state.oauth2.access_url(), MCP_PATH)
    {
        state.metrics.registry.inc(
            crate::metrics::OAUTH2_AUDIENCE_REJECTIONS,
            &[("route", "mcp")],
        );
        return challenge(
            &state,
            Some("The access token audience does not match this resource."),
        )
        .detail("The access token was issued for a different resource.")
        .into_response();
    }
    if req.method() == Method::GET || req.method() == Method::DELETE {
        return ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed.")
            .into_response();
    }
    req.extensions_mut().insert(auth.caller);
    next.run(req).await
}

/// One MCP server instance per request; it holds only the shared state.
#[derive(Clone)]
pub struct HangarMcp {
    state: AppState,
}

fn schema(properties: Value, required: &[&str]) -> Arc<Map<String, Value>> {
    let v = json!({"type": "object", "properties": properties, "required": required});
    match v {
        Value::Object(m) => Arc::new(m),
        _ => Arc::new(Map::new()),
    }
}

/// The names of the tools of §5.9, in [`tools`] order (metric labels check against it).
const TOOL_NAMES: [&str; 5] = [
    "coder_get_authenticated_user",
    "coder_list_templates",
    "coder_list_workspaces",
    "coder_get_workspace",
    "coder_report_task",
];

/// The tools of §5.9.
fn tools() -> Vec<Tool> {
    let read = ToolAnnotations::new().read_only(true);
    vec![
        Tool::new(
            TOOL_NAMES[0],
            "Get the user this token acts for (GET /api/v2/users/me).",
            schema(json!({}), &[]),
        )
        .with_annotations(read.clone()),
        Tool::new(
            TOOL_NAMES[1],
            "List the templates the user can use to create workspaces.",
            schema(json!({}), &[]),
        )
        .with_annotations(read.clone()),
        Tool::new(
            TOOL_NAMES[2],
            "List workspaces of an owner (default: the user).",
            schema(
                json!({"owner": {"type": "string", "description": "A username, or \"me\"."}}),
                &[],
            ),
        )
        .with_annotations(read.clone()),
        Tool::new(
            TOOL_NAMES[3],
            "Get a workspace by id, owner/name, or the user's own workspace name.",
            schema(
                json!({"workspace_id": {"type": "string", "description": "UUID, owner/name, or name."}}),
                &["workspace_id"],
            ),
        )
        .with_annotations(read),
        Tool::new(
            TOOL_NAMES[4],
            "Report the state of the task an AI agent works on in a workspace app.",
            schema(
                json!({
                    "workspace": {"type": "string", "description": "UUID, owner/name, or name."},
                    "app_slug": {"type": "string"},
                    "state": {"type": "string", "enum": ["working", "idle", "failure"]},
                    "summary": {"type": "string", "maxLength": 160},
                    "link": {"type": "string"}
                }),
                &["workspace", "app_slug", "state", "summary"],
            ),
        )
        .with_annotations(ToolAnnotations::new().read_only(false).destructive(false)),
    ]
}

/// A string argument; missing or not a string → JSON-RPC invalid params.
fn arg(args: &Map<String, Value>, name: &str, required: bool) -> Result<Option<String>, ErrorData> {
    match args.get(name) {
        None | Some(Value::Null) if !required => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        _ => Err(ErrorData::invalid_params(
            format!("argument {name:?} must be a string"),
            None,
        )),
    }
}

/// A domain failure the model should see (`isError: true`), not a protocol error.
struct ToolError(String);

impl HangarMcp {
    async fn run(
        &self,
        caller: &Caller,
        name: &str,
        args: &Map<String, Value>,
    ) -> Result<Result<Value, ToolError>, ErrorData> {
        let s = &self.state;
        let result = match name {
            "coder_get_authenticated_user" => crate::routes::user_value(s, caller).await,
            "coder_list_templates" => crate::routes::template_summaries(s, caller).await,
            "coder_list_workspaces" => {
                let owner = arg(args, "owner", false)?.unwrap_or_else(|| "me".into());
                crate::routes::workspace_summaries(s, caller, &owner).await
            }
            "coder_get_workspace" => {
                let id = arg(args, "workspace_id", true)?.unwrap_or_default();
                crate::routes::workspace_value(s, caller, &id).await
            }
            "coder_report_task" => {
                let workspace = arg(args, "workspace", true)?.unwrap_or_default();
                let app_slug = arg(args, "app_slug", true)?.unwrap_or_default();
                let state = arg(args, "state", true)?.unwrap_or_default();
                let summary = arg(args, "summary", true)?.unwrap_or_default();
                let link = arg(args, "link", false)?.unwrap_or_default();
                if !matches!(state.as_str(), "working" | "idle" | "failure") {
                    return Err(ErrorData::invalid_params(
                        "state must be one of working, idle, failure",
                        None,
                    ));
                }
                crate::routes::report_task(s, caller, &workspace, app_slug, state, summary, link)
                    .await
            }
            other => {
                return Err(ErrorData::invalid_params(
                    format!("unknown tool {other:?}"),
                    None,
                ));
            }
        };
        Ok(result.map_err(|e| ToolError(e.body.message)))
    }
}

impl ServerHandler for HangarMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("hangar", env!("CARGO_PKG_VERSION")))
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(tools()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let caller = context
            .extensions
            .get::<axum::http::request::Parts>()
            .and_then(|p| p.extensions.get::<Caller>())
            .cloned()
            .ok_or_else(|| ErrorData::internal_error("no authenticated caller", None))?;
        let name = request.name.to_string();
        let args = request.arguments.clone().unwrap_or_default();
        let started = Instant::now();
        let outcome = self.run(&caller, &name, &args).await;
        let m = &self.state.metrics.registry;
        let result = match &outcome {
            Ok(Ok(_)) => "success",
            Ok(Err(_)) => "error",
            Err(_) => "invalid_params",
        };
        let label = TOOL_NAMES
            .iter()
            .find(|t| **t == name)
            .copied()
            .unwrap_or("unknown");
        m.inc(
            crate::metrics::MCP_TOOL_CALLS,
            &[("tool", label), ("result", result)],
        );
        m.observe(
            crate::metrics::MCP_TOOL_DURATION,
            &[("tool", label)],
            started.elapsed().as_secs_f64(),
        );
        Ok(match outcome? {
            Ok(v) => CallToolResult::success(vec![ContentBlock::text(v.to_string())]),
            Err(ToolError(message)) => CallToolResult::error(vec![ContentBlock::text(message)]),
        }
        .into())
    }
}
