//! Platform endpoints (02 §4.6, §11 item 30).

use hangar_core::experiments::Experiments;
use hangar_testkit::{Client, db_tests, spawn_server, spawn_server_with};

db_tests! {
    async fn experiments_buildinfo_health(db: TestDb) {
        let srv = spawn_server(&db).await;
        let c = Client::new(&srv.url);
        let admin = c.first_user().await;
        assert_eq!(admin.get("/api/v2/experiments").await.text, "[]");
        assert_eq!(admin.get("/api/v2/experiments/available").await.text, "{\"safe\":[\"oauth2\",\"mcp-server-http\"]}");
        assert_eq!(c.get("/api/v2/experiments").await.status.as_u16(), 401);
        let b = c.get("/api/v2/buildinfo").await;
        assert_eq!(b.status.as_u16(), 200);
        for field in ["external_url", "version", "dashboard_url", "telemetry", "workspace_proxy", "agent_api_version", "provisioner_api_version", "upgrade_message", "deployment_id", "webpush_public_key"] {
            assert!(b.json.get(field).is_some(), "{field}");
        }
        assert!(b.json["version"].as_str().unwrap().starts_with('v'));
        assert_eq!(b.json["dashboard_url"], srv.url.as_str());
        assert_eq!(c.get("/healthz").await.text, "OK");
        assert!(!c.get("/healthz").await.header("x-request-id").is_empty());
        let rid = "6f1f8f4e-7f1a-4c55-8d0e-3d8a3f7b9a11";
        let a = c.send(reqwest::Method::GET, "/healthz", None).await;
        assert_ne!(a.header("x-request-id"), rid);
        let kept = reqwest::Client::new().get(format!("{}/healthz", srv.url)).header("X-Request-Id", rid).send().await.unwrap();
        assert_eq!(kept.headers()["x-request-id"], rid);
        let unknown = c.get("/api/v2/nope").await;
        assert_eq!((unknown.status.as_u16(), unknown.message()), (404, "Route not found."));

        // Metrics label by route template.
        admin.get("/api/v2/users/admin").await;
        let text = srv.state.metrics.render();
        assert!(text.contains("coderd_api_requests_processed_total{code=\"200\",method=\"GET\",path=\"/api/v2/users/{user}\"}"), "{text}");
        assert!(text.contains("hangar_login_attempts_total{result=\"success\"} 1"), "{text}");

        // A database that is gone: /healthz answers 503, the API 503 with Retry-After.
        srv.db().connection().clone().close().await.unwrap();
        let h = c.get("/healthz").await;
        assert_eq!((h.status.as_u16(), h.text.as_str()), (503, "database unreachable"));
        let a = admin.get("/api/v2/users/me").await;
        assert_eq!((a.status.as_u16(), a.message(), a.header("retry-after")), (503, "Service temporarily unavailable.", "1"));
    }

    async fn experiments_flag(db: TestDb) {
        let srv = spawn_server_with(&db, |c| c.experiments = Experiments::parse(["web-push"]).0).await;
        let admin = Client::new(&srv.url).first_user().await;
        assert_eq!(admin.get("/api/v2/experiments").await.text, "[\"web-push\"]");
    }
}
