//! The agent API and app statuses (04 §11 items 50–59).

use crate::workspaces::{tar_of, template, wait_for};
use hangar_testkit::{Client, db_tests, spawn_server};
use serde_json::{Value, json};

fn echo_with_devcontainers() -> Vec<u8> {
    let apply = json!({
        "resources": [{"name": "dev", "type": "hangar_test", "agents": [{
            "name": "main", "operating_system": "linux", "architecture": "amd64",
            "devcontainers": [{"name": "repo", "workspace_folder": "/w"}, {"name": "second", "workspace_folder": "/x", "config_path": "/x/.devcontainer.json"}],
            "resources_monitoring": {"memory": {"enabled": true, "threshold": 80}, "volumes": [{"path": "/home", "enabled": true, "threshold": 90}]},
            "apps": [{"id": "a1", "slug": "code", "url": "http://localhost:13337"}, {"id": "a2", "slug": "web", "url": "http://localhost:8080"}]
        }]}]
    });
    tar_of(&[("apply.json", &apply.to_string())])
}

/// The agent token of the workspace's latest build, read from the database.
async fn agent_token(srv: &hangar_testkit::TestServer, ws: &Value) -> String {
    let agent = ws["latest_build"]["resources"][0]["agents"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let db = srv.db();
    let rows = db
        .query(
            "SELECT auth_token FROM workspace_agents WHERE id = $1",
            vec![db.ctx().uuid(agent.parse().unwrap())],
        )
        .await
        .unwrap();
    let r = &rows[0];
    match db.backend() {
        hangar_db::Backend::Postgres => r.uuid("auth_token").unwrap().to_string(),
        hangar_db::Backend::Sqlite => r.string("auth_token").unwrap(),
    }
}

db_tests! {
    async fn agent_api(db: TestDb) {
        let srv = spawn_server(&db).await;
        let admin = Client::new(&srv.url).first_user().await;
        let (t, _) = template(&admin, "agents", echo_with_devcontainers()).await;
        let w = admin.post("/api/v2/users/me/workspaces", &json!({"name": "dev", "template_id": t["id"]})).await;
        let wid = w.json["id"].as_str().unwrap().to_string();
        let ws = wait_for(&admin, &format!("/api/v2/workspaces/{wid}"), |j| j["latest_build"]["status"] == "running").await;
        // 56: no statuses yet.
        assert_eq!(ws["latest_app_status"], Value::Null);
        assert_eq!(ws["latest_build"]["resources"][0]["agents"][0]["apps"][0]["statuses"], json!([]));
        let token = agent_token(&srv, &ws).await;
        let agent = Client::new(&srv.url).with_token(&token);

        // 53, 16: the manifest.
        let m = agent.get("/api/v2/workspaceagents/me/manifest").await;
        assert_eq!(m.status.as_u16(), 200, "{}", m.text);
        assert_eq!(m.json["agent_name"], "main");
        assert_eq!(m.json["workspace_name"], "dev");
        // Inserted together, so ordered by id within one created_at.
        let dcs = m.json["devcontainers"].as_array().unwrap();
        assert_eq!(dcs.len(), 2);
        assert!(dcs[0]["id"].as_str() < dcs[1]["id"].as_str(), "{dcs:?}");
        let repo = dcs.iter().find(|d| d["name"] == "repo").unwrap();
        assert_eq!((repo["workspace_folder"].as_str(), repo["config_path"].as_str()), (Some("/w"), Some("")));
        assert_eq!(m.json["resources_monitoring"]["memory"], json!({"enabled": true, "threshold": 80}));
        assert_eq!(m.json["resources_monitoring"]["volumes"][0]["path"], "/home");
        // 60: a user token is not an agent token.
        assert_eq!(admin.get("/api/v2/workspaceagents/me/manifest").await.message(), "Workspace agent not authorized.");
        let a = admin.patch("/api/v2/workspaceagents/me/app-status", &json!({"app_slug": "code", "state": "working", "message": "x"})).await;
        assert_eq!(a.status.as_u16(), 401);

        // 54: lifecycle and connection.
        let a = agent.post("/api/v2/workspaceagents/me/report-lifecycle", &json!({"state": "ready"})).await;
        assert_eq!(a.status.as_u16(), 204, "{}", a.text);
        assert_eq!(agent.post("/api/v2/workspaceagents/me/heartbeat", &json!({})).await.status.as_u16(), 204);
        let agent_id = ws["latest_build"]["resources"][0]["agents"][0]["id"].as_str().unwrap().to_string();
        let got = admin.get(&format!("/api/v2/workspaceagents/{agent_id}")).await;
        assert_eq!((got.json["status"].as_str(), got.json["lifecycle_state"].as_str()), (Some("connected"), Some("ready")));
        assert!(got.json["ready_at"].is_string());
        srv.clock.advance(chrono::TimeDelta::seconds(46));
        assert_eq!(admin.get(&format!("/api/v2/workspaceagents/{agent_id}")).await.json["status"], "disconnected");

        // 55, 57: statuses.
        for state in ["working", "idle", "complete", "failure"] {
            let a = agent.patch("/api/v2/workspaceagents/me/app-status", &json!({"app_slug": "code", "state": state, "message": ""})).await;
            assert_eq!(a.status.as_u16(), 200, "{state}: {}", a.text);
            srv.clock.advance(chrono::TimeDelta::seconds(1));
        }
        let a = agent.patch("/api/v2/workspaceagents/me/app-status", &json!({"app_slug": "code", "state": "working", "message": "Running tests"})).await;
        assert_eq!(a.status.as_u16(), 200);
        let ws = admin.get(&format!("/api/v2/workspaces/{wid}")).await.json;
        assert_eq!(ws["latest_app_status"]["message"], "Running tests");
        assert_eq!(ws["latest_app_status"]["agent_id"], agent_id.as_str());
        assert_eq!(ws["latest_app_status"]["workspace_id"], wid.as_str());
        assert_eq!(ws["latest_app_status"]["uri"], "");
        assert_eq!((ws["latest_app_status"]["icon"].as_str(), ws["latest_app_status"]["needs_user_attention"].as_bool()), (Some(""), Some(false)));
        let code = &ws["latest_build"]["resources"][0]["agents"][0]["apps"][0];
        assert_eq!(code["slug"], "code");
        assert_eq!(code["statuses"][0]["message"], "Running tests");
        assert_eq!(code["statuses"].as_array().unwrap().len(), 5);
        // 56: the newest across apps wins.
        srv.clock.advance(chrono::TimeDelta::seconds(1));
        agent.patch("/api/v2/workspaceagents/me/app-status", &json!({"app_slug": "web", "state": "idle", "message": ""})).await;
        let ws = admin.get(&format!("/api/v2/workspaces/{wid}")).await.json;
        assert_eq!(ws["latest_app_status"]["state"], "idle");
        // 57–59: the exact errors, in order.
        let a = agent.patch("/api/v2/workspaceagents/me/app-status", &json!({"app_slug": "nope", "state": "done", "message": "x".repeat(200)})).await;
        assert_eq!(a.status.as_u16(), 400);
        assert_eq!(a.json, json!({"message": "Invalid state provided.", "detail": "invalid state: \"done\"", "validations": [{"field": "state", "detail": "State must be one of: complete, failure, working, idle."}]}));
        let a = agent.patch("/api/v2/workspaceagents/me/app-status", &json!({"app_slug": "nope", "state": "working", "message": "é".repeat(161)})).await;
        assert_eq!((a.message(), a.json["validations"][0]["field"].as_str()), ("Message is too long.", Some("message")));
        let a = agent.patch("/api/v2/workspaceagents/me/app-status", &json!({"app_slug": "code", "state": "working", "message": "é".repeat(160)})).await;
        assert_eq!(a.status.as_u16(), 200);
        let a = agent.patch("/api/v2/workspaceagents/me/app-status", &json!({"app_slug": "nope", "state": "working", "message": "m"})).await;
        assert_eq!((a.message(), a.detail()), ("Failed to get workspace app.", "No app found with slug \"nope\""));

        // 50: sub agents.
        let c = agent.post("/api/v2/workspaceagents/me/subagents", &json!({"name": "child", "directory": "/c"})).await;
        assert_eq!(c.status.as_u16(), 201, "{}", c.text);
        let dup = agent.post("/api/v2/workspaceagents/me/subagents", &json!({"name": "child"})).await;
        assert_eq!((dup.status.as_u16(), dup.message()), (409, "workspace agent name \"child\" already exists in this workspace build"));
        let child_token = c.json["auth_token"].as_str().unwrap().to_string();
        let child = Client::new(&srv.url).with_token(&child_token);
        let nested = child.post("/api/v2/workspaceagents/me/subagents", &json!({"name": "grandchild"})).await;
        assert_eq!((nested.status.as_u16(), nested.message()), (403, "Sub agents cannot create sub agents."));
        assert_eq!(agent.get("/api/v2/workspaceagents/me/subagents").await.json.as_array().unwrap().len(), 1);
        let cid = c.json["id"].as_str().unwrap();
        assert_eq!(agent.delete(&format!("/api/v2/workspaceagents/me/subagents/{cid}")).await.status.as_u16(), 204);
        assert_eq!(child.get("/api/v2/workspaceagents/me/manifest").await.status.as_u16(), 401);
        assert_eq!(admin.get(&format!("/api/v2/workspaceagents/{cid}")).await.status.as_u16(), 404);
        let again = agent.post("/api/v2/workspaceagents/me/subagents", &json!({"name": "child"})).await;
        assert_eq!(again.status.as_u16(), 201, "{}", again.text);

        // 52: the token of an older build stops working.
        let b = admin.post(&format!("/api/v2/workspaces/{wid}/builds"), &json!({"transition": "stop"})).await;
        assert_eq!(b.status.as_u16(), 201, "{}", b.text);
        wait_for(&admin, &format!("/api/v2/workspaces/{wid}"), |j| j["latest_build"]["status"] == "stopped").await;
        let old = agent.get("/api/v2/workspaceagents/me/manifest").await;
        assert_eq!((old.status.as_u16(), old.message()), (401, "Workspace agent not authorized."));
    }
}
