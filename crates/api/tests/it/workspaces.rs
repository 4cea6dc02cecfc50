//! Templates, workspaces and builds through the HTTP API with built-in echo daemons
//! (04 §11).

use hangar_testkit::{Client, TestServer, db_tests, spawn_server};
use serde_json::{Value, json};
use std::time::Duration;

/// A tar archive of `files` (name, contents).
pub fn tar_of(files: &[(&str, &str)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, body) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(body.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, body.as_bytes()).unwrap();
    }
    b.into_inner().unwrap()
}

/// The echo template of the checklist: resource `dev` (type `hangar_test`), agent `main`,
/// app `code`.
pub fn echo_template() -> Vec<u8> {
    let apply = json!({
        "logs": [{"level": "info", "stage": "Applying", "output": "hello from echo"}],
        "resources": [{"name": "dev", "type": "hangar_test", "agents": [{
            "name": "main", "operating_system": "linux", "architecture": "amd64",
            "apps": [{"id": "code-app", "slug": "code", "display_name": "Code", "url": "http://localhost:13337",
                      "healthcheck": {"url": "http://localhost:13337/healthz", "interval": 5, "threshold": 3}}]
        }]}]
    });
    tar_of(&[
        ("apply.json", &apply.to_string()),
        ("README.md", "# Echo\n"),
    ])
}

pub async fn upload(c: &Client, tar: Vec<u8>) -> (u16, Value) {
    let res = reqwest::Client::new()
        .post(format!("{}/api/v2/files", c.base()))
        .header("Coder-Session-Token", c.token.clone().unwrap_or_default())
        .header("Content-Type", "application/x-tar")
        .body(tar)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// Polls `path` until `done` holds (bounded: 20 s).
pub async fn wait_for(c: &Client, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..200 {
        let a = c.get(path).await;
        if done(&a.json) {
            return a.json;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting on {path}: {}", c.get(path).await.text);
}

/// Uploads `tar`, imports it, waits for success, creates template `name`.
pub async fn template(c: &Client, name: &str, tar: Vec<u8>) -> (Value, Value) {
    let (_, file) = upload(c, tar).await;
    let v = c
        .post(
            "/api/v2/organizations/default/templateversions",
            &json!({"file_id": file["hash"], "provisioner": "echo", "storage_method": "file"}),
        )
        .await;
    assert_eq!(v.status.as_u16(), 201, "{}", v.text);
    let vid = v.json["id"].as_str().unwrap().to_string();
    let done = wait_for(c, &format!("/api/v2/templateversions/{vid}"), |j| {
        j["job"]["status"] == "succeeded" || j["job"]["status"] == "failed"
    })
    .await;
    assert_eq!(done["job"]["status"], "succeeded", "{done}");
    let t = c
        .post(
            "/api/v2/organizations/default/templates",
            &json!({"name": name, "template_version_id": vid}),
        )
        .await;
    assert_eq!(t.status.as_u16(), 201, "{}", t.text);
    (t.json, done)
}

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_string()
}

async fn server(db: &hangar_testkit::TestDb) -> (TestServer, Client) {
    let srv = spawn_server(db).await;
    let admin = Client::new(&srv.url).first_user().await;
    (srv, admin)
}

db_tests! {
    /// 1–2: uploads.
    async fn files(db: TestDb) {
        let (_srv, admin) = server(&db).await;
        let tar = echo_template();
        let (s1, f1) = upload(&admin, tar.clone()).await;
        assert_eq!(s1, 201);
        let (s2, f2) = upload(&admin, tar.clone()).await;
        assert_eq!((s2, &f2["hash"]), (200, &f1["hash"]));
        let (_, bob) = admin.create_user("bob").await;
        let (s3, f3) = upload(&bob, tar).await;
        assert_eq!(s3, 201);
        assert_ne!(f3["hash"], f1["hash"]);
        let res = reqwest::Client::new()
            .post(format!("{}/api/v2/files", admin.base()))
            .header("Coder-Session-Token", admin.token.clone().unwrap())
            .header("Content-Type", "text/plain")
            .body("hi")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 400);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["message"], "Unsupported content type header \"text/plain\".");
        // A traversal entry, written with a raw header (the builder refuses `..`).
        let mut h = tar::Header::new_old();
        h.as_old_mut().name[..7].copy_from_slice(b"../evil");
        h.set_size(1);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        let mut raw = h.as_bytes().to_vec();
        raw.extend_from_slice(b"x");
        raw.resize(1024, 0);
        raw.extend_from_slice(&[0u8; 1024]);
        let (s, body) = upload(&admin, raw).await;
        assert_eq!((s, body["message"].as_str()), (400, Some("Invalid tar archive.")));
        assert!(body["detail"].as_str().unwrap().starts_with("entry \"../evil\""), "{body}");
    }

    /// 3, 6–9: versions and templates.
    async fn templates(db: TestDb) {
        let (_srv, admin) = server(&db).await;
        let (_, file) = upload(&admin, echo_template()).await;
        let v = admin.post("/api/v2/organizations/default/templateversions", &json!({"file_id": file["hash"], "provisioner": "echo", "name": "v1"})).await;
        assert_eq!(v.status.as_u16(), 201, "{}", v.text);
        assert_eq!(v.json["has_ai_task"], Value::Null);
        let vid = id(&v.json);
        let done = wait_for(&admin, &format!("/api/v2/templateversions/{vid}"), |j| j["job"]["status"] == "succeeded").await;
        assert_eq!(done["has_ai_task"], false);
        assert_eq!(done["readme"], "# Echo\n");
        let res = admin.get(&format!("/api/v2/templateversions/{vid}/resources")).await;
        assert_eq!(res.json[0]["name"], "dev");
        assert_eq!(res.json[0]["agents"][0]["name"], "main");
        assert_eq!(res.json[0]["agents"][0]["apps"][0]["health"], "initializing");
        let logs = admin.get(&format!("/api/v2/templateversions/{vid}/logs")).await;
        assert!(logs.json.as_array().is_some(), "{}", logs.text);

        let t = admin.post("/api/v2/organizations/default/templates", &json!({"name": "docker", "template_version_id": vid})).await;
        assert_eq!(t.status.as_u16(), 201, "{}", t.text);
        let tid = id(&t.json);
        assert_eq!(t.json["active_version_id"], vid.as_str());
        // 6: duplicate version name in the template.
        let dup = admin
            .post("/api/v2/organizations/default/templateversions", &json!({"file_id": file["hash"], "provisioner": "echo", "name": "v1", "template_id": tid}))
            .await;
        assert_eq!((dup.status.as_u16(), dup.message()), (409, "A template version with name \"v1\" already exists for this template."));
        // 7: template names are case-insensitive.
        let (_, other) = template(&admin, "other", echo_template()).await;
        let _ = other;
        let v2 = admin.post("/api/v2/organizations/default/templateversions", &json!({"file_id": file["hash"], "provisioner": "echo"})).await;
        let v2id = id(&v2.json);
        wait_for(&admin, &format!("/api/v2/templateversions/{v2id}"), |j| j["job"]["status"] == "succeeded").await;
        let d = admin.post("/api/v2/organizations/default/templates", &json!({"name": "Docker", "template_version_id": v2id})).await;
        assert_eq!(d.status.as_u16(), 409, "{}", d.text);
        assert_eq!(d.json["validations"][0]["field"], "name");
        // 8: activating another template's version.
        let others = admin.get("/api/v2/organizations/default/templates/other").await;
        let a = admin.patch(&format!("/api/v2/templates/{tid}/versions"), &json!({"id": others.json["active_version_id"]})).await;
        assert_eq!((a.status.as_u16(), a.message()), (400, "The provided template version doesn't belong to the specified template."));
        // 9: delete with a live workspace, then without.
        let w = admin.post("/api/v2/users/me/workspaces", &json!({"name": "dev", "template_id": tid})).await;
        assert_eq!(w.status.as_u16(), 201, "{}", w.text);
        let wid = id(&w.json);
        wait_for(&admin, &format!("/api/v2/workspaces/{wid}"), |j| j["latest_build"]["status"] == "running").await;
        let a = admin.delete(&format!("/api/v2/templates/{tid}")).await;
        assert_eq!((a.status.as_u16(), a.message()), (400, "All workspaces must be deleted before a template can be removed."));
        let b = admin.post(&format!("/api/v2/workspaces/{wid}/builds"), &json!({"transition": "delete"})).await;
        assert_eq!(b.status.as_u16(), 201, "{}", b.text);
        wait_for(&admin, &format!("/api/v2/workspaces/{wid}?include_deleted=true"), |j| j["latest_build"]["status"] == "deleted").await;
        let a = admin.delete(&format!("/api/v2/templates/{tid}")).await;
        assert_eq!((a.status.as_u16(), a.message()), (200, "Template has been deleted!"));
        assert_eq!(admin.get(&format!("/api/v2/templates/{tid}")).await.status.as_u16(), 404);
        let again = admin.post("/api/v2/organizations/default/templates", &json!({"name": "docker", "template_version_id": v2id})).await;
        assert_eq!(again.status.as_u16(), 201, "{}", again.text);
    }

    /// 19–28, 30: workspaces and builds.
    async fn workspaces_and_builds(db: TestDb) {
        let (_srv, admin) = server(&db).await;
        let (t, _) = template(&admin, "docker", echo_template()).await;
        let tid = id(&t);
        let w = admin.post("/api/v2/users/me/workspaces", &json!({"name": "dev", "template_id": tid})).await;
        assert_eq!(w.status.as_u16(), 201, "{}", w.text);
        assert_eq!(w.json["latest_build"]["build_number"], 1);
        assert_eq!(w.json["latest_build"]["transition"], "start");
        assert_eq!(w.json["latest_build"]["has_ai_task"], Value::Null);
        let wid = id(&w.json);
        let running = wait_for(&admin, &format!("/api/v2/workspaces/{wid}"), |j| j["latest_build"]["status"] == "running").await;
        assert_eq!(running["latest_build"]["has_ai_task"], false);
        assert_eq!(running["latest_build"]["resources"][0]["agents"][0]["name"], "main");
        assert_eq!(running["outdated"], false);
        // 20: duplicate name.
        let dup = admin.post("/api/v2/users/me/workspaces", &json!({"name": "Dev", "template_id": tid})).await;
        assert_eq!(dup.status.as_u16(), 409);
        assert_eq!(dup.json, json!({"message": "Workspace \"Dev\" already exists.", "validations": [{"field": "name", "detail": "This value is already in use and should be unique."}]}));
        // 21: both or neither template ids.
        let a = admin.post("/api/v2/users/me/workspaces", &json!({"name": "x", "template_id": tid, "template_version_id": t["active_version_id"]})).await;
        assert_eq!(a.status.as_u16(), 400);
        let a = admin.post("/api/v2/users/me/workspaces", &json!({"name": "x"})).await;
        assert_eq!((a.status.as_u16(), a.message()), (400, "Exactly one of template_id or template_version_id must be set."));
        // 22: name rule.
        let a = admin.post("/api/v2/users/me/workspaces", &json!({"name": "my_ws", "template_id": tid})).await;
        assert_eq!((a.status.as_u16(), a.message(), a.detail()), (400, "Validation failed.", "Validation failed for tag \"workspace_name\" with value: \"my_ws\""));
        // 26: orphan rules.
        let a = admin.post(&format!("/api/v2/workspaces/{wid}/builds"), &json!({"transition": "stop", "orphan": true})).await;
        assert_eq!((a.status.as_u16(), a.message()), (400, "Orphan is only permitted when deleting a workspace."));
        // Stop, then the list filter, then delete.
        let b = admin.post(&format!("/api/v2/workspaces/{wid}/builds"), &json!({"transition": "stop"})).await;
        assert_eq!(b.status.as_u16(), 201, "{}", b.text);
        assert_eq!(b.json["build_number"], 2);
        let stopped = wait_for(&admin, &format!("/api/v2/workspaces/{wid}"), |j| j["latest_build"]["status"] == "stopped").await;
        assert_eq!(stopped["latest_build"]["transition"], "stop");
        let list = admin.get("/api/v2/workspaces?q=owner:me%20status:stopped").await;
        assert_eq!(list.json["count"], 1, "{}", list.text);
        assert_eq!(admin.get("/api/v2/workspaces?q=owner:me%20status:running").await.json["count"], 0);
        let bad = admin.get("/api/v2/workspaces?q=foo:bar").await;
        assert_eq!((bad.status.as_u16(), bad.message()), (400, "Invalid workspace search query."));
        let builds = admin.get(&format!("/api/v2/workspaces/{wid}/builds")).await;
        assert_eq!(builds.json[0]["build_number"], 2);
        assert_eq!(builds.json[1]["build_number"], 1);
        // 30: another member cannot see it.
        let (_, bob) = admin.create_user("bob").await;
        assert_eq!(bob.get(&format!("/api/v2/workspaces/{wid}")).await.status.as_u16(), 404);
        assert_eq!(bob.get("/api/v2/workspaces").await.json["count"], 0);
        // 26: an orphan delete finishes at once; 25: 410 and name reuse.
        let o = admin.post(&format!("/api/v2/workspaces/{wid}/builds"), &json!({"transition": "delete", "orphan": true})).await;
        assert_eq!(o.status.as_u16(), 201, "{}", o.text);
        assert_eq!(o.json["status"], "deleted");
        let gone = admin.get(&format!("/api/v2/workspaces/{wid}")).await;
        assert_eq!(gone.status.as_u16(), 410);
        assert!(gone.message().ends_with("specifying '?include_deleted=true' and trying again."), "{}", gone.text);
        assert_eq!(admin.get(&format!("/api/v2/workspaces/{wid}?include_deleted=true")).await.status.as_u16(), 200);
        let again = admin.post("/api/v2/users/me/workspaces", &json!({"name": "dev", "template_id": tid})).await;
        assert_eq!(again.status.as_u16(), 201, "{}", again.text);
    }

    /// 24, 42: an active build blocks another; cancel rules.
    async fn active_builds_and_cancel(db: TestDb) {
        let (_srv, admin) = server(&db).await;
        let slow = tar_of(&[("apply.json", &json!({"wait_for_cancel": true, "resources": []}).to_string()), ("plan.json", "{}")]);
        let (t, _) = template(&admin, "slow", slow).await;
        let w = admin.post("/api/v2/users/me/workspaces", &json!({"name": "busy", "template_id": id(&t)})).await;
        let wid = id(&w.json);
        let a = admin.post(&format!("/api/v2/workspaces/{wid}/builds"), &json!({"transition": "stop"})).await;
        assert_eq!((a.status.as_u16(), a.message()), (409, "A workspace build is already active."));
        let build = id(&w.json["latest_build"]);
        wait_for(&admin, &format!("/api/v2/workspacebuilds/{build}"), |j| j["status"] == "starting").await;
        let c = admin.patch(&format!("/api/v2/workspacebuilds/{build}/cancel"), &json!({})).await;
        assert_eq!((c.status.as_u16(), c.message()), (200, "Job has been marked as canceled..."));
        let again = admin.patch(&format!("/api/v2/workspacebuilds/{build}/cancel"), &json!({})).await;
        assert_eq!((again.status.as_u16(), again.message()), (400, "Job has already been marked as canceled!"));
        let done = wait_for(&admin, &format!("/api/v2/workspacebuilds/{build}"), |j| j["status"] == "canceled").await;
        assert!(done["job"].get("error").is_none(), "{done}");
        // A new build is allowed once the job is done.
        let b = admin.post(&format!("/api/v2/workspaces/{wid}/builds"), &json!({"transition": "delete", "orphan": true})).await;
        assert_eq!(b.status.as_u16(), 201, "{}", b.text);
        let c = admin.patch(&format!("/api/v2/workspacebuilds/{}/cancel", id(&b.json)), &json!({})).await;
        assert_eq!((c.status.as_u16(), c.message()), (400, "Job has already completed!"));
        let logs = admin.get(&format!("/api/v2/workspacebuilds/{build}/logs?follow=true")).await;
        assert_eq!((logs.status.as_u16(), logs.message()), (400, "Follow requires a WebSocket upgrade."));
    }

    /// 28: a new active version makes the workspace outdated; 23: deprecated templates
    /// refuse new workspaces; 62: AI tasks.
    async fn outdated_deprecated_and_ai_tasks(db: TestDb) {
        let (srv, admin) = server(&db).await;
        let (t, _) = template(&admin, "docker", echo_template()).await;
        let tid = id(&t);
        let w = admin.post("/api/v2/users/me/workspaces", &json!({"name": "dev", "template_id": tid})).await;
        let wid = id(&w.json);
        let ws = wait_for(&admin, &format!("/api/v2/workspaces/{wid}"), |j| j["latest_build"]["status"] == "running").await;
        assert_eq!(ws["outdated"], false);
        assert_eq!(ws["latest_build"]["has_ai_task"], false);
        assert!(ws["latest_build"].get("ai_task_sidebar_app_id").is_none());
        // A second version with an AI task whose sidebar is app `code`.
        let ai = json!({
            "ai_tasks": [{"id": "task", "sidebar_app_id": "code-app"}],
            "resources": [{"name": "dev", "type": "hangar_test", "agents": [{"name": "main", "operating_system": "linux", "architecture": "amd64",
                "apps": [{"id": "code-app", "slug": "code", "url": "http://localhost:13337"}]}]}]
        });
        let (_, file) = upload(&admin, tar_of(&[("apply.json", &ai.to_string())])).await;
        let v = admin.post("/api/v2/organizations/default/templateversions", &json!({"file_id": file["hash"], "provisioner": "echo", "template_id": tid})).await;
        let vid = id(&v.json);
        let done = wait_for(&admin, &format!("/api/v2/templateversions/{vid}"), |j| j["job"]["status"] == "succeeded").await;
        assert_eq!(done["has_ai_task"], true);
        let a = admin.patch(&format!("/api/v2/templates/{tid}/versions"), &json!({"id": vid})).await;
        assert_eq!(a.status.as_u16(), 200, "{}", a.text);
        assert_eq!(admin.get(&format!("/api/v2/workspaces/{wid}")).await.json["outdated"], true);
        // Build on the new version: has_ai_task and the sidebar app's row id.
        let b = admin.post(&format!("/api/v2/workspaces/{wid}/builds"), &json!({"transition": "start", "template_version_id": vid})).await;
        assert_eq!(b.status.as_u16(), 201, "{}", b.text);
        let ws = wait_for(&admin, &format!("/api/v2/workspaces/{wid}"), |j| j["latest_build"]["build_number"] == 2 && j["latest_build"]["status"] == "running").await;
        assert_eq!(ws["latest_build"]["has_ai_task"], true);
        let app_id = &ws["latest_build"]["resources"][0]["agents"][0]["apps"][0]["id"];
        assert_eq!(&ws["latest_build"]["ai_task_sidebar_app_id"], app_id);
        assert_eq!(ws["outdated"], false);
        // 23: deprecation.
        db.execute("UPDATE templates SET deprecated = 'use another' WHERE name = 'docker'", vec![]).await.unwrap();
        let a = admin.post("/api/v2/users/me/workspaces", &json!({"name": "two", "template_id": tid})).await;
        assert_eq!((a.status.as_u16(), a.message()), (400, "Template \"docker\" has been deprecated, and cannot be used to create a new workspace."));
        let _ = srv;
    }

    /// 04 §6.3 step 3: parameter values are checked against their definitions.
    async fn parameter_validation(db: TestDb) {
        let (_srv, admin) = server(&db).await;
        let plan = json!({"parameters": [
            {"name": "cpu", "type": "number", "mutable": true, "default_value": "2",
             "validation_min": 1, "validation_max": 8, "validation_monotonic": "increasing"},
            {"name": "region", "default_value": "eu", "mutable": true,
             "options": [{"name": "EU", "value": "eu"}, {"name": "US", "value": "us"}]},
            {"name": "repo", "default_value": "", "validation_regex": "^https://",
             "validation_error": "{value} is not an https URL"},
            {"name": "disk", "type": "number", "default_value": "10"}
        ]});
        let tar = tar_of(&[("plan.json", &plan.to_string()), ("apply.json", r#"{"resources":[]}"#)]);
        let (t, _) = template(&admin, "params", tar).await;
        let tid = id(&t);
        let bad = admin.post("/api/v2/users/me/workspaces", &json!({"name": "p1", "template_id": tid,
            "rich_parameter_values": [{"name": "cpu", "value": "9"}, {"name": "region", "value": "mars"},
                                      {"name": "repo", "value": "ftp://x"}, {"name": "nope", "value": "1"}]})).await;
        assert_eq!((bad.status.as_u16(), bad.message()), (400, "Invalid rich parameter values."), "{}", bad.text);
        let details: Vec<&str> = bad.json["validations"].as_array().unwrap().iter()
            .map(|v| { assert_eq!(v["field"], "rich_parameter_values"); v["detail"].as_str().unwrap() }).collect();
        assert_eq!(details, [
            "parameter \"nope\": not defined by the template version",
            "parameter \"cpu\": value 9 is more than the maximum 8",
            "parameter \"region\": value \"mars\" is not one of the options",
            "parameter \"repo\": ftp://x is not an https URL",
        ]);
        // Nothing was written.
        assert_eq!(admin.get("/api/v2/workspaces").await.json["count"], 0);
        let w = admin.post("/api/v2/users/me/workspaces", &json!({"name": "p1", "template_id": tid,
            "rich_parameter_values": [{"name": "cpu", "value": "4"}, {"name": "repo", "value": "https://x"}]})).await;
        assert_eq!(w.status.as_u16(), 201, "{}", w.text);
        let wid = id(&w.json);
        wait_for(&admin, &format!("/api/v2/workspaces/{wid}"), |j| j["latest_build"]["status"] == "running").await;
        // Monotonic: cpu may not go down; an immutable parameter may not change.
        let down = admin.post(&format!("/api/v2/workspaces/{wid}/builds"), &json!({"transition": "start",
            "rich_parameter_values": [{"name": "cpu", "value": "3"}, {"name": "disk", "value": "20"}]})).await;
        assert_eq!(down.status.as_u16(), 400, "{}", down.text);
        assert_eq!(down.json["validations"][0]["detail"], "parameter \"cpu\": value 3 must be equal to or greater than the previous value 4");
        assert_eq!(down.json["validations"][1]["detail"], "parameter \"disk\": is not mutable");
        let up = admin.post(&format!("/api/v2/workspaces/{wid}/builds"), &json!({"transition": "start",
            "rich_parameter_values": [{"name": "cpu", "value": "5"}]})).await;
        assert_eq!(up.status.as_u16(), 201, "{}", up.text);
        let params = admin.get(&format!("/api/v2/workspacebuilds/{}/parameters", id(&up.json))).await;
        assert_eq!(params.status.as_u16(), 200, "{}", params.text);
        assert!(params.json.as_array().unwrap().contains(&json!({"name": "cpu", "value": "5"})), "{}", params.text);
    }

    /// 04 §7: the area's metrics, fed by the built-in daemons, the executor and the gauges loop.
    async fn area_metrics(db: TestDb) {
        let srv = spawn_server(&db).await;
        let admin = Client::new(&srv.url).first_user().await;
        let text = srv.state.metrics.render();
        for name in ["coderd_provisionerd_jobs_current", "coderd_provisionerd_job_timings_seconds", "coderd_workspace_builds_total",
                     "hangar_provisioner_jobs_pending", "hangar_provisioner_daemons", "hangar_provisioner_acquire_total",
                     "hangar_provisioner_hung_jobs_total", "hangar_lifecycle_builds_total"] {
            assert!(text.contains(&format!("# TYPE {name} ")), "{name} missing:\n{text}");
        }
        let (t, _) = template(&admin, "docker", echo_template()).await;
        let w = admin.post("/api/v2/users/me/workspaces", &json!({"name": "dev", "template_id": id(&t)})).await;
        assert_eq!(w.status.as_u16(), 201, "{}", w.text);
        wait_for(&admin, &format!("/api/v2/workspaces/{}", id(&w.json)), |j| j["latest_build"]["status"] == "running").await;
        let m = srv.state.workspaces.metrics();
        // The job is stored as done before the daemon's source records it; wait for that.
        for _ in 0..100 {
            if m.value("coderd_workspace_builds_total", &[("template_name", "docker"), ("workspace_transition", "start"), ("status", "success")]) == Some(1.0) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(m.value("coderd_workspace_builds_total", &[("template_name", "docker"), ("workspace_transition", "start"), ("status", "success")]), Some(1.0));
        assert_eq!(m.value("coderd_provisionerd_jobs_current", &[("provisioner", "echo")]), Some(0.0));
        assert!(m.value("hangar_provisioner_acquire_total", &[("result", "acquired")]).unwrap_or(0.0) >= 2.0);
        let text = srv.state.metrics.render();
        assert!(text.contains("coderd_provisionerd_job_timings_seconds_count{provisioner=\"echo\",status=\"success\"} 2"), "{text}");
        srv.state.workspaces.refresh_queue_gauges().await.unwrap();
        assert_eq!(m.value("hangar_provisioner_jobs_pending", &[]), Some(0.0));
        assert_eq!(m.value("hangar_provisioner_daemons", &[("status", "idle")]), Some(2.0));
        assert_eq!(m.value("hangar_provisioner_daemons", &[("status", "offline")]), Some(0.0));
    }

    /// 04 §4.5: `follow` over a WebSocket sends the backlog and new logs, then closes with
    /// 1000 once the job is done.
    async fn follow_logs_over_websocket(db: TestDb) {
        let (_srv, admin) = server(&db).await;
        let (t, _) = template(&admin, "docker", echo_template()).await;
        let w = admin.post("/api/v2/users/me/workspaces", &json!({"name": "dev", "template_id": id(&t)})).await;
        let build = id(&w.json["latest_build"]);
        wait_for(&admin, &format!("/api/v2/workspacebuilds/{build}"), |j| j["status"] == "running").await;
        let (frames, close) = follow(&admin, &format!("/api/v2/workspacebuilds/{build}/logs?follow=true"), || async {}).await;
        assert!(frames.iter().any(|f| f["output"] == "hello from echo"), "{frames:?}");
        let ids: Vec<i64> = frames.iter().map(|f| f["id"].as_i64().unwrap()).collect();
        assert!(ids.windows(2).all(|p| p[0] < p[1]), "{ids:?}");
        assert_eq!(close, Some(1000));
        // `after` skips what the client has.
        let (rest, _) = follow(&admin, &format!("/api/v2/workspacebuilds/{build}/logs?follow=true&after={}", ids[0]), || async {}).await;
        assert_eq!(rest.len(), frames.len() - 1);

        // A running job: the socket stays open until the job ends (here: canceled).
        let slow = tar_of(&[("apply.json", &json!({"wait_for_cancel": true, "resources": []}).to_string()), ("plan.json", "{}")]);
        let (t, _) = template(&admin, "slow", slow).await;
        let w = admin.post("/api/v2/users/me/workspaces", &json!({"name": "busy", "template_id": id(&t)})).await;
        let build = id(&w.json["latest_build"]);
        wait_for(&admin, &format!("/api/v2/workspacebuilds/{build}"), |j| j["status"] == "starting").await;
        let cancel = || async {
            let c = admin.patch(&format!("/api/v2/workspacebuilds/{build}/cancel"), &json!({})).await;
            assert_eq!(c.status.as_u16(), 200, "{}", c.text);
        };
        let (_, close) = follow(&admin, &format!("/api/v2/workspacebuilds/{build}/logs?follow=true"), cancel).await;
        assert_eq!(close, Some(1000));
        let done = admin.get(&format!("/api/v2/workspacebuilds/{build}")).await;
        assert_eq!(done.json["status"], "canceled", "{}", done.text);
    }
}

/// Follows `path` over a WebSocket; `while_open` runs once the socket is up. Returns the
/// JSON frames and the close code (bounded: 30 s).
async fn follow<F: std::future::Future<Output = ()>>(
    c: &Client,
    path: &str,
    while_open: impl FnOnce() -> F,
) -> (Vec<Value>, Option<u16>) {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest};
    let mut req = format!("{}{path}", c.base().replacen("http", "ws", 1))
        .into_client_request()
        .unwrap();
    req.headers_mut().insert(
        "Coder-Session-Token",
        c.token.clone().unwrap().parse().unwrap(),
    );
    let (mut ws, res) = tokio_tungstenite::connect_async(req)
        .await
        .expect("websocket upgrade");
    assert_eq!(res.status().as_u16(), 101);
    while_open().await;
    let mut frames = vec![];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let msg = tokio::time::timeout_at(deadline, ws.next())
            .await
            .expect("the stream ended in time");
        match msg {
            Some(Ok(Message::Text(t))) => frames.push(serde_json::from_str(&t).unwrap()),
            Some(Ok(Message::Close(frame))) => return (frames, frame.map(|f| u16::from(f.code))),
            Some(Ok(_)) => {}
            None | Some(Err(_)) => return (frames, None),
        }
    }
}
