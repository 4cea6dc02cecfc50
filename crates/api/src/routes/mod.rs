//! The route table. [`ROUTES`] documents every route (it feeds the OpenAPI document) and
//! [`router`] mounts the same set; a test checks the two agree.

mod agents;
mod job_logs;
mod keys;
mod oauth2;
mod oauth2_apps;
mod oauth2_consent;
mod orgs;
mod platform;
mod users;
mod workspaces;

pub(crate) use users::user_value;
pub(crate) use workspaces::{
    report_task, template_summaries, workspace_summaries, workspace_value,
};

use crate::{AppState, auth, observe};
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::{delete, get, patch, post, put};
use hangar_core::experiments::Experiment;

/// One documented route.
#[derive(Debug, Clone, Copy)]
pub struct RouteDoc {
    pub method: &'static str,
    pub path: &'static str,
    pub summary: &'static str,
    pub tag: &'static str,
    /// Needs no session token.
    pub public: bool,
    /// Only served (and documented at `/api/v2/openapi.json`) while this experiment is on.
    pub experiment: Option<Experiment>,
}

const fn r(
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    tag: &'static str,
) -> RouteDoc {
    RouteDoc {
        method,
        path,
        summary,
        tag,
        public: false,
        experiment: None,
    }
}

/// A route of the `oauth2` experiment (03): 404 and undocumented while it is off.
const fn oauth2_doc(
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    public: bool,
) -> RouteDoc {
    RouteDoc {
        method,
        path,
        summary,
        tag: "OAuth2",
        public,
        experiment: Some(Experiment::OAuth2),
    }
}

const fn public(
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    tag: &'static str,
) -> RouteDoc {
    RouteDoc {
        method,
        path,
        summary,
        tag,
        public: true,
        experiment: None,
    }
}

/// A route of the agent API: authenticated by an agent token, not a session.
const fn agent(method: &'static str, path: &'static str, summary: &'static str) -> RouteDoc {
    RouteDoc {
        method,
        path,
        summary,
        tag: "Agents",
        public: true,
        experiment: None,
    }
}

pub const ROUTES: &[RouteDoc] = &[
    public("GET", "/healthz", "Health check", "General"),
    public("GET", "/api/v2/buildinfo", "Build info", "General"),
    public(
        "GET",
        "/api/v2/openapi.json",
        "This OpenAPI document",
        "General",
    ),
    r(
        "GET",
        "/api/v2/experiments",
        "List enabled experiments",
        "General",
    ),
    r(
        "GET",
        "/api/v2/experiments/available",
        "List safe experiments",
        "General",
    ),
    public(
        "GET",
        "/api/v2/users/first",
        "Check whether the initial user exists",
        "Users",
    ),
    public(
        "POST",
        "/api/v2/users/first",
        "Create the initial user",
        "Users",
    ),
    public(
        "POST",
        "/api/v2/users/login",
        "Log in with email and password",
        "Authorization",
    ),
    r("POST", "/api/v2/users/logout", "Log out", "Authorization"),
    r("GET", "/api/v2/users", "List users", "Users"),
    r("POST", "/api/v2/users", "Create a user", "Users"),
    r("GET", "/api/v2/users/{user}", "Get a user", "Users"),
    r("DELETE", "/api/v2/users/{user}", "Delete a user", "Users"),
    r(
        "GET",
        "/api/v2/users/{user}/organizations",
        "List a user's organizations",
        "Users",
    ),
    r(
        "PUT",
        "/api/v2/users/{user}/password",
        "Change a user's password",
        "Users",
    ),
    r(
        "PUT",
        "/api/v2/users/{user}/status/suspend",
        "Suspend a user",
        "Users",
    ),
    r(
        "PUT",
        "/api/v2/users/{user}/status/activate",
        "Activate a user",
        "Users",
    ),
    r(
        "GET",
        "/api/v2/users/{user}/roles",
        "Get a user's roles",
        "Members",
    ),
    r(
        "PUT",
        "/api/v2/users/{user}/roles",
        "Set a user's site roles",
        "Members",
    ),
    r(
        "POST",
        "/api/v2/users/{user}/keys",
        "Create a session key",
        "Users",
    ),
    r(
        "POST",
        "/api/v2/users/{user}/keys/tokens",
        "Create a token",
        "Users",
    ),
    r(
        "GET",
        "/api/v2/users/{user}/keys/tokens",
        "List tokens",
        "Users",
    ),
    r(
        "GET",
        "/api/v2/users/{user}/keys/tokens/tokenconfig",
        "Get the token configuration",
        "Users",
    ),
    r(
        "GET",
        "/api/v2/users/{user}/keys/tokens/{keyname}",
        "Get a token by name",
        "Users",
    ),
    r(
        "GET",
        "/api/v2/users/{user}/keys/{keyid}",
        "Get a key by id",
        "Users",
    ),
    r(
        "DELETE",
        "/api/v2/users/{user}/keys/{keyid}",
        "Delete a key",
        "Users",
    ),
    r(
        "GET",
        "/api/v2/organizations",
        "List organizations",
        "Organizations",
    ),
    r(
        "POST",
        "/api/v2/organizations",
        "Create an organization",
        "Organizations",
    ),
    r(
        "GET",
        "/api/v2/organizations/{organization}",
        "Get an organization",
        "Organizations",
    ),
    r(
        "PATCH",
        "/api/v2/organizations/{organization}",
        "Update an organization",
        "Organizations",
    ),
    r(
        "DELETE",
        "/api/v2/organizations/{organization}",
        "Delete an organization",
        "Organizations",
    ),
    r(
        "GET",
        "/api/v2/organizations/{organization}/members",
        "List organization members",
        "Members",
    ),
    r(
        "POST",
        "/api/v2/organizations/{organization}/members/{user}",
        "Add an organization member",
        "Members",
    ),
    r(
        "DELETE",
        "/api/v2/organizations/{organization}/members/{user}",
        "Remove an organization member",
        "Members",
    ),
    r(
        "PUT",
        "/api/v2/organizations/{organization}/members/{user}/roles",
        "Set a member's organization roles",
        "Members",
    ),
    r(
        "GET",
        "/api/v2/organizations/{organization}/groups",
        "List groups",
        "Enterprise",
    ),
    r(
        "POST",
        "/api/v2/organizations/{organization}/groups",
        "Create a group",
        "Enterprise",
    ),
    r("GET", "/api/v2/groups/{group}", "Get a group", "Enterprise"),
    r(
        "PATCH",
        "/api/v2/groups/{group}",
        "Update a group",
        "Enterprise",
    ),
    r(
        "DELETE",
        "/api/v2/groups/{group}",
        "Delete a group",
        "Enterprise",
    ),
    r("POST", "/api/v2/files", "Upload a file", "Files"),
    r("GET", "/api/v2/files/{fileID}", "Get a file", "Files"),
    r(
        "POST",
        "/api/v2/organizations/{organization}/templateversions",
        "Create a template version",
        "Templates",
    ),
    r(
        "GET",
        "/api/v2/templateversions/{templateversion}",
        "Get a template version",
        "Templates",
    ),
    r(
        "GET",
        "/api/v2/templateversions/{templateversion}/resources",
        "Get a template version's resources",
        "Templates",
    ),
    r(
        "GET",
        "/api/v2/templateversions/{templateversion}/rich-parameters",
        "Get a template version's parameters",
        "Templates",
    ),
    r(
        "GET",
        "/api/v2/templateversions/{templateversion}/logs",
        "Get a template version's import logs",
        "Templates",
    ),
    r(
        "PATCH",
        "/api/v2/templateversions/{templateversion}/cancel",
        "Cancel a template version import",
        "Templates",
    ),
    r(
        "POST",
        "/api/v2/organizations/{organization}/templates",
        "Create a template",
        "Templates",
    ),
    r(
        "GET",
        "/api/v2/organizations/{organization}/templates",
        "List an organization's templates",
        "Templates",
    ),
    r(
        "GET",
        "/api/v2/organizations/{organization}/templates/{templatename}",
        "Get a template by name",
        "Templates",
    ),
    r("GET", "/api/v2/templates", "List templates", "Templates"),
    r(
        "GET",
        "/api/v2/templates/{template}",
        "Get a template",
        "Templates",
    ),
    r(
        "DELETE",
        "/api/v2/templates/{template}",
        "Delete a template",
        "Templates",
    ),
    r(
        "GET",
        "/api/v2/templates/{template}/versions",
        "List a template's versions",
        "Templates",
    ),
    r(
        "PATCH",
        "/api/v2/templates/{template}/versions",
        "Set the active version",
        "Templates",
    ),
    r(
        "GET",
        "/api/v2/templates/{template}/versions/{templateversionname}",
        "Get a template version by name",
        "Templates",
    ),
    r(
        "POST",
        "/api/v2/users/{user}/workspaces",
        "Create a workspace",
        "Workspaces",
    ),
    r(
        "POST",
        "/api/v2/organizations/{organization}/members/{user}/workspaces",
        "Create a workspace in an organization",
        "Workspaces",
    ),
    r("GET", "/api/v2/workspaces", "List workspaces", "Workspaces"),
    r(
        "GET",
        "/api/v2/workspaces/{workspace}",
        "Get a workspace",
        "Workspaces",
    ),
    r(
        "GET",
        "/api/v2/users/{user}/workspace/{workspacename}",
        "Get a workspace by owner and name",
        "Workspaces",
    ),
    r(
        "GET",
        "/api/v2/users/{user}/workspace/{workspacename}/builds/{buildnumber}",
        "Get a build by number",
        "Builds",
    ),
    r(
        "POST",
        "/api/v2/workspaces/{workspace}/builds",
        "Create a workspace build",
        "Builds",
    ),
    r(
        "GET",
        "/api/v2/workspaces/{workspace}/builds",
        "List a workspace's builds",
        "Builds",
    ),
    r(
        "PUT",
        "/api/v2/workspaces/{workspace}/ttl",
        "Set a workspace's TTL",
        "Workspaces",
    ),
    r(
        "PUT",
        "/api/v2/workspaces/{workspace}/autostart",
        "Set a workspace's autostart schedule",
        "Workspaces",
    ),
    r(
        "GET",
        "/api/v2/workspacebuilds/{workspacebuild}",
        "Get a workspace build",
        "Builds",
    ),
    r(
        "GET",
        "/api/v2/workspacebuilds/{workspacebuild}/resources",
        "Get a build's resources",
        "Builds",
    ),
    r(
        "GET",
        "/api/v2/workspacebuilds/{workspacebuild}/parameters",
        "Get a build's parameter values",
        "Builds",
    ),
    r(
        "GET",
        "/api/v2/workspacebuilds/{workspacebuild}/logs",
        "Get a build's logs",
        "Builds",
    ),
    r(
        "PATCH",
        "/api/v2/workspacebuilds/{workspacebuild}/cancel",
        "Cancel a workspace build",
        "Builds",
    ),
    r(
        "GET",
        "/api/v2/workspaceagents/{workspaceagent}",
        "Get a workspace agent",
        "Agents",
    ),
    agent(
        "GET",
        "/api/v2/workspaceagents/me/manifest",
        "Get the agent manifest",
    ),
    agent(
        "POST",
        "/api/v2/workspaceagents/me/startup",
        "Report agent startup",
    ),
    agent(
        "POST",
        "/api/v2/workspaceagents/me/heartbeat",
        "Agent heartbeat",
    ),
    agent(
        "POST",
        "/api/v2/workspaceagents/me/report-lifecycle",
        "Report the agent lifecycle state",
    ),
    agent(
        "POST",
        "/api/v2/workspaceagents/me/app-health",
        "Report app health",
    ),
    agent(
        "PATCH",
        "/api/v2/workspaceagents/me/app-status",
        "Report an app status",
    ),
    agent(
        "POST",
        "/api/v2/workspaceagents/me/subagents",
        "Create a sub agent",
    ),
    agent(
        "GET",
        "/api/v2/workspaceagents/me/subagents",
        "List sub agents",
    ),
    agent(
        "DELETE",
        "/api/v2/workspaceagents/me/subagents/{id}",
        "Delete a sub agent",
    ),
    oauth2_doc(
        "GET",
        "/api/v2/oauth2-provider/apps",
        "List OAuth2 apps",
        false,
    ),
    oauth2_doc(
        "POST",
        "/api/v2/oauth2-provider/apps",
        "Create an OAuth2 app",
        false,
    ),
    oauth2_doc(
        "GET",
        "/api/v2/oauth2-provider/apps/{app}",
        "Get an OAuth2 app",
        false,
    ),
    oauth2_doc(
        "PUT",
        "/api/v2/oauth2-provider/apps/{app}",
        "Update an OAuth2 app",
        false,
    ),
    oauth2_doc(
        "DELETE",
        "/api/v2/oauth2-provider/apps/{app}",
        "Delete an OAuth2 app",
        false,
    ),
    oauth2_doc(
        "GET",
        "/api/v2/oauth2-provider/apps/{app}/secrets",
        "List an OAuth2 app's secrets",
        false,
    ),
    oauth2_doc(
        "POST",
        "/api/v2/oauth2-provider/apps/{app}/secrets",
        "Create an OAuth2 app secret",
        false,
    ),
    oauth2_doc(
        "DELETE",
        "/api/v2/oauth2-provider/apps/{app}/secrets/{secretID}",
        "Delete an OAuth2 app secret",
        false,
    ),
    oauth2_doc(
        "GET",
        "/.well-known/oauth-authorization-server",
        "OAuth2 authorization server metadata (RFC 8414)",
        true,
    ),
    oauth2_doc(
        "GET",
        "/.well-known/oauth-protected-resource",
        "OAuth2 protected resource metadata (RFC 9728)",
        true,
    ),
    oauth2_doc("POST", "/oauth2/tokens", "OAuth2 token endpoint", true),
    oauth2_doc(
        "POST",
        "/oauth2/token",
        "OAuth2 token endpoint (alias)",
        true,
    ),
    oauth2_doc(
        "DELETE",
        "/oauth2/tokens",
        "Remove the caller's grants of an OAuth2 app",
        false,
    ),
    oauth2_doc(
        "POST",
        "/oauth2/revoke",
        "OAuth2 token revocation (RFC 7009)",
        true,
    ),
    oauth2_doc("GET", "/oauth2/authorize", "OAuth2 consent page", true),
    oauth2_doc(
        "POST",
        "/oauth2/authorize",
        "Approve an OAuth2 authorization request",
        true,
    ),
    oauth2_doc("GET", "/login", "Sign-in page for the consent flow", true),
    oauth2_doc("POST", "/login", "Sign in from the consent flow", true),
    oauth2_doc(
        "POST",
        "/oauth2/register",
        "Dynamic client registration (RFC 7591)",
        true,
    ),
    oauth2_doc(
        "GET",
        "/oauth2/clients/{client_id}",
        "Read a registered client (RFC 7592)",
        true,
    ),
    oauth2_doc(
        "PUT",
        "/oauth2/clients/{client_id}",
        "Replace a registered client (RFC 7592)",
        true,
    ),
    oauth2_doc(
        "DELETE",
        "/oauth2/clients/{client_id}",
        "Delete a registered client (RFC 7592)",
        true,
    ),
    RouteDoc {
        method: "POST",
        path: "/api/experimental/mcp/http",
        summary: "MCP Streamable HTTP endpoint (stateless, JSON responses)",
        tag: "MCP",
        public: false,
        experiment: Some(Experiment::McpServerHttp),
    },
];

/// The whole application router.
pub fn router(state: AppState) -> Router {
    let public = Router::new()
        .route("/healthz", get(platform::healthz))
        .route("/api/v2/buildinfo", get(platform::buildinfo))
        .route("/api/v2/openapi.json", get(platform::openapi_json))
        .route(
            "/api/v2/users/first",
            get(users::first_user_exists).post(users::create_first_user),
        )
        .route("/api/v2/users/login", post(users::login));

    let protected = Router::new()
        .route("/api/v2/experiments", get(platform::experiments))
        .route(
            "/api/v2/experiments/available",
            get(platform::experiments_available),
        )
        .route("/api/v2/users/logout", post(users::logout))
        .route(
            "/api/v2/oauth2-provider/apps",
            get(oauth2_apps::list).post(oauth2_apps::create),
        )
        .route(
            "/api/v2/oauth2-provider/apps/{app}",
            get(oauth2_apps::get)
                .put(oauth2_apps::update)
                .delete(oauth2_apps::delete),
        )
        .route(
            "/api/v2/oauth2-provider/apps/{app}/secrets",
            get(oauth2_apps::secrets).post(oauth2_apps::create_secret),
        )
        .route(
            "/api/v2/oauth2-provider/apps/{app}/secrets/{secretID}",
            delete(oauth2_apps::delete_secret),
        )
        .route("/api/v2/users", get(users::list).post(users::create))
        .route(
            "/api/v2/users/{user}",
            get(users::get).delete(users::delete),
        )
        .route(
            "/api/v2/users/{user}/organizations",
            get(users::organizations),
        )
        .route("/api/v2/users/{user}/password", put(users::change_password))
        .route("/api/v2/users/{user}/status/suspend", put(users::suspend))
        .route("/api/v2/users/{user}/status/activate", put(users::activate))
        .route(
            "/api/v2/users/{user}/roles",
            get(users::roles).put(users::set_roles),
        )
        .route("/api/v2/users/{user}/keys", post(keys::create_session_key))
        .route(
            "/api/v2/users/{user}/keys/tokens",
            get(keys::list_tokens).post(keys::create_token),
        )
        .route(
            "/api/v2/users/{user}/keys/tokens/tokenconfig",
            get(keys::token_config),
        )
        .route(
            "/api/v2/users/{user}/keys/tokens/{keyname}",
            get(keys::token_by_name),
        )
        .route(
            "/api/v2/users/{user}/keys/{keyid}",
            get(keys::get_key).delete(keys::delete_key),
        )
        .route("/api/v2/organizations", get(orgs::list).post(orgs::create))
        .route(
            "/api/v2/organizations/{organization}",
            get(orgs::get).patch(orgs::update).delete(orgs::delete),
        )
        .route(
            "/api/v2/organizations/{organization}/members",
            get(orgs::members),
        )
        .route(
            "/api/v2/organizations/{organization}/members/{user}",
            post(orgs::add_member).delete(orgs::remove_member),
        )
        .route(
            "/api/v2/organizations/{organization}/members/{user}/roles",
            put(orgs::set_member_roles),
        )
        .route(
            "/api/v2/organizations/{organization}/groups",
            get(orgs::list_groups).post(orgs::create_group),
        )
        .route(
            "/api/v2/groups/{group}",
            get(orgs::get_group)
                .patch(orgs::update_group)
                .delete(orgs::delete_group),
        )
        .route(
            "/api/v2/files",
            post(workspaces::upload_file).layer(DefaultBodyLimit::max(
                hangar_workspaces::service::MAX_FILE_BYTES + 1,
            )),
        )
        .route("/api/v2/files/{fileID}", get(workspaces::get_file))
        .route(
            "/api/v2/organizations/{organization}/templateversions",
            post(workspaces::create_version),
        )
        .route(
            "/api/v2/templateversions/{templateversion}",
            get(workspaces::get_version),
        )
        .route(
            "/api/v2/templateversions/{templateversion}/resources",
            get(workspaces::version_resources),
        )
        .route(
            "/api/v2/templateversions/{templateversion}/rich-parameters",
            get(workspaces::version_parameters),
        )
        .route(
            "/api/v2/templateversions/{templateversion}/logs",
            get(workspaces::version_logs),
        )
        .route(
            "/api/v2/templateversions/{templateversion}/cancel",
            patch(workspaces::cancel_version),
        )
        .route(
            "/api/v2/organizations/{organization}/templates",
            get(workspaces::list_org_templates).post(workspaces::create_template),
        )
        .route(
            "/api/v2/organizations/{organization}/templates/{templatename}",
            get(workspaces::get_template_by_name),
        )
        .route("/api/v2/templates", get(workspaces::list_templates))
        .route(
            "/api/v2/templates/{template}",
            get(workspaces::get_template).delete(workspaces::delete_template),
        )
        .route(
            "/api/v2/templates/{template}/versions",
            get(workspaces::template_versions).patch(workspaces::activate_version),
        )
        .route(
            "/api/v2/templates/{template}/versions/{templateversionname}",
            get(workspaces::template_version_by_name),
        )
        .route(
            "/api/v2/users/{user}/workspaces",
            post(workspaces::create_user_workspace),
        )
        .route(
            "/api/v2/organizations/{organization}/members/{user}/workspaces",
            post(workspaces::create_member_workspace),
        )
        .route("/api/v2/workspaces", get(workspaces::list_workspaces))
        .route(
            "/api/v2/workspaces/{workspace}",
            get(workspaces::get_workspace),
        )
        .route(
            "/api/v2/users/{user}/workspace/{workspacename}",
            get(workspaces::get_workspace_by_name),
        )
        .route(
            "/api/v2/users/{user}/workspace/{workspacename}/builds/{buildnumber}",
            get(workspaces::get_build_by_number),
        )
        .route(
            "/api/v2/workspaces/{workspace}/builds",
            post(workspaces::create_build).get(workspaces::list_builds),
        )
        .route(
            "/api/v2/workspaces/{workspace}/ttl",
            put(workspaces::put_ttl),
        )
        .route(
            "/api/v2/workspaces/{workspace}/autostart",
            put(workspaces::put_autostart),
        )
        .route(
            "/api/v2/workspacebuilds/{workspacebuild}",
            get(workspaces::get_build),
        )
        .route(
            "/api/v2/workspacebuilds/{workspacebuild}/resources",
            get(workspaces::build_resources),
        )
        .route(
            "/api/v2/workspacebuilds/{workspacebuild}/parameters",
            get(workspaces::build_parameters),
        )
        .route(
            "/api/v2/workspacebuilds/{workspacebuild}/logs",
            get(workspaces::build_logs),
        )
        .route(
            "/api/v2/workspacebuilds/{workspacebuild}/cancel",
            patch(workspaces::cancel_build),
        )
        .route(
            "/api/v2/workspaceagents/{workspaceagent}",
            get(agents::get_agent),
        )
        .route_layer(middleware::from_fn_with_state(state.clone(), auth::require));

    let agent_routes = Router::new()
        .route("/api/v2/workspaceagents/me/manifest", get(agents::manifest))
        .route("/api/v2/workspaceagents/me/startup", post(agents::startup))
        .route(
            "/api/v2/workspaceagents/me/heartbeat",
            post(agents::heartbeat),
        )
        .route(
            "/api/v2/workspaceagents/me/report-lifecycle",
            post(agents::report_lifecycle),
        )
        .route(
            "/api/v2/workspaceagents/me/app-health",
            post(agents::app_health),
        )
        .route(
            "/api/v2/workspaceagents/me/app-status",
            patch(agents::app_status),
        )
        .route(
            "/api/v2/workspaceagents/me/subagents",
            post(agents::create_sub_agent).get(agents::list_sub_agents),
        )
        .route(
            "/api/v2/workspaceagents/me/subagents/{id}",
            axum::routing::delete(agents::delete_sub_agent),
        )
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            agents::require_agent,
        ));

    let oauth2_routes = Router::new()
        .route(
            "/.well-known/oauth-authorization-server",
            get(oauth2::as_metadata_doc).options(oauth2::preflight),
        )
        .route(
            "/.well-known/oauth-authorization-server/",
            get(oauth2::as_metadata_doc).options(oauth2::preflight),
        )
        .route(
            "/.well-known/oauth-protected-resource/",
            get(oauth2::prm_root).options(oauth2::preflight),
        )
        .route(
            "/.well-known/oauth-authorization-server/{*rest}",
            get(oauth2::as_metadata_doc).options(oauth2::preflight),
        )
        .route(
            "/.well-known/oauth-protected-resource",
            get(oauth2::prm_root).options(oauth2::preflight),
        )
        .route(
            "/.well-known/oauth-protected-resource/{*suffix}",
            get(oauth2::prm_suffix).options(oauth2::preflight),
        )
        .route(
            "/oauth2/tokens",
            post(oauth2::token)
                .delete(oauth2::remove_grants)
                .options(oauth2::preflight),
        )
        .route(
            "/oauth2/token",
            post(oauth2::token).options(oauth2::preflight),
        )
        .route(
            "/oauth2/revoke",
            post(oauth2::revoke).options(oauth2::preflight),
        )
        .route(
            "/oauth2/register",
            post(oauth2::register).options(oauth2::preflight),
        )
        .route(
            "/oauth2/clients/{client_id}",
            get(oauth2::read_client)
                .put(oauth2::update_client)
                .delete(oauth2::delete_client)
                .options(oauth2::preflight),
        )
        .route(
            "/oauth2/authorize",
            get(oauth2_consent::show).post(oauth2_consent::approve),
        )
        .route(
            "/login",
            get(oauth2_consent::login_form).post(oauth2_consent::login_submit),
        );
    // MCP: authentication inside, then the protocol gate (experiments, CORS) outside it.
    let mcp_routes = Router::new()
        .route_service(
            hangar_oauth2_provider::MCP_PATH,
            crate::mcp::service(state.clone()),
        )
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::mcp::layer,
        ));

    public
        .merge(protected)
        .merge(oauth2_routes)
        .merge(mcp_routes)
        .merge(agent_routes)
        .fallback(observe::not_found)
        .method_not_allowed_fallback(observe::method_not_allowed)
        // Outside the routes, so the 404s and 405s of protocol paths get the experiment gate,
        // CORS and `no-store` as well; other paths pass straight through.
        .layer(middleware::from_fn_with_state(
            state.clone(),
            oauth2::protocol_layer,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            observe::layer,
        ))
        .with_state(state)
}

/// The Prometheus exporter, served on `--prometheus-address`.
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(platform::metrics))
        .with_state(state)
}
