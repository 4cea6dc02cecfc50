//! The lifecycle executor through its real entry point (04 §11 items 32–33).

use crate::workspaces::{echo_template, template, wait_for};
use hangar_testkit::{Client, db_tests, spawn_server};
use serde_json::json;

db_tests! {
    async fn autostop_and_autostart(db: TestDb) {
        let srv = spawn_server(&db).await;
        let admin = Client::new(&srv.url).first_user().await;
        let (t, _) = template(&admin, "docker", echo_template()).await;
        let w = admin.post("/api/v2/users/me/workspaces", &json!({"name": "dev", "template_id": t["id"]})).await;
        let wid = w.json["id"].as_str().unwrap().to_string();
        wait_for(&admin, &format!("/api/v2/workspaces/{wid}"), |j| j["latest_build"]["status"] == "running").await;
        // 33: schedules are validated.
        let a = admin.put(&format!("/api/v2/workspaces/{wid}/autostart"), &json!({"schedule": "30 9 * * 1-5 *"})).await;
        assert_eq!((a.status.as_u16(), a.message()), (400, "Invalid autostart schedule."));
        assert_eq!(a.json["validations"][0]["field"], "schedule");
        let a = admin.put(&format!("/api/v2/workspaces/{wid}/ttl"), &json!({"ttl_ms": 1000})).await;
        assert_eq!((a.status.as_u16(), a.message()), (400, "Invalid TTL."));
        // 32: a TTL, a start, and 61 minutes later one tick stops it.
        assert_eq!(admin.put(&format!("/api/v2/workspaces/{wid}/ttl"), &json!({"ttl_ms": 3_600_000})).await.status.as_u16(), 204);
        let b = admin.post(&format!("/api/v2/workspaces/{wid}/builds"), &json!({"transition": "start"})).await;
        assert_eq!(b.status.as_u16(), 201, "{}", b.text);
        let ws = wait_for(&admin, &format!("/api/v2/workspaces/{wid}"), |j| j["latest_build"]["status"] == "running" && j["latest_build"]["build_number"] == 2).await;
        assert!(ws["latest_build"]["deadline"].is_string(), "{ws}");
        assert!(srv.state.workspaces.lifecycle_tick().await.unwrap().autostopped.is_empty());
        srv.clock.advance(chrono::TimeDelta::minutes(61));
        let report = srv.state.workspaces.lifecycle_tick().await.unwrap();
        assert_eq!(report.autostopped.len(), 1, "{report:?}");
        let ws = wait_for(&admin, &format!("/api/v2/workspaces/{wid}"), |j| j["latest_build"]["status"] == "stopped").await;
        assert_eq!(ws["latest_build"]["reason"], "autostop");
        assert_eq!(ws["latest_build"]["build_number"], 3);
        // Autostart: a schedule whose next instant has passed starts it again, once.
        assert_eq!(admin.put(&format!("/api/v2/workspaces/{wid}/autostart"), &json!({"schedule": "0 * * * *"})).await.status.as_u16(), 204);
        let ws = admin.get(&format!("/api/v2/workspaces/{wid}")).await.json;
        assert!(ws["next_start_at"].is_string(), "{ws}");
        srv.clock.advance(chrono::TimeDelta::minutes(61));
        let report = srv.state.workspaces.lifecycle_tick().await.unwrap();
        assert_eq!(report.autostarted.len(), 1, "{report:?}");
        let ws = wait_for(&admin, &format!("/api/v2/workspaces/{wid}"), |j| j["latest_build"]["status"] == "running" && j["latest_build"]["build_number"] == 4).await;
        assert_eq!(ws["latest_build"]["reason"], "autostart");
        assert!(srv.state.workspaces.lifecycle_tick().await.unwrap().autostarted.is_empty());
        let m = srv.state.workspaces.metrics();
        for reason in ["autostop", "autostart"] {
            assert_eq!(m.value("hangar_lifecycle_builds_total", &[("reason", reason), ("result", "ok")]), Some(1.0), "{reason}");
        }
    }
}
