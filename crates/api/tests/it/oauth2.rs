//! The OAuth2 provider's management API (03 §5.7; checklist 63–65) on both backends.

use hangar_core::experiments::Experiments;
use hangar_testkit::{Client, db_tests, spawn_server, spawn_server_with};
use serde_json::json;

db_tests! {
    /// 63: apps and secrets; 64: members read apps but manage nothing; 65: deleting a secret.
    async fn apps_and_secrets(db: TestDb) {
        let srv = spawn_server_with(&db, |c| c.experiments = Experiments::parse(["oauth2"]).0).await;
        let admin = Client::new(&srv.url).first_user().await;
        let a = admin.post("/api/v2/oauth2-provider/apps", &json!({"name": "My App", "callback_url": "http://localhost:9876/callback", "icon": ""})).await;
        assert_eq!(a.status.as_u16(), 201, "{}", a.text);
        assert_eq!(a.json["endpoints"]["token"], format!("{}/oauth2/tokens", srv.url));
        assert_eq!(a.json["endpoints"]["device_authorization"], "");
        assert_eq!(a.json["redirect_uris"], json!(["http://localhost:9876/callback"]));
        assert_eq!(a.json["client_type"], "confidential");
        let app = a.json["id"].as_str().unwrap().to_string();

        let s = admin.post(&format!("/api/v2/oauth2-provider/apps/{app}/secrets"), &json!({})).await;
        assert_eq!(s.status.as_u16(), 201, "{}", s.text);
        let full = s.json["client_secret_full"].as_str().unwrap().to_string();
        let re_ok = full.len() == 57 && full.starts_with("coder_") && full.as_bytes()[16] == b'_'
            && full.chars().filter(|c| *c == '_').count() == 2;
        assert!(re_ok, "{full}");
        let list = admin.get(&format!("/api/v2/oauth2-provider/apps/{app}/secrets")).await;
        assert_eq!(list.json[0]["client_secret_truncated"], full[full.len() - 6..]);
        assert_eq!(list.json[0]["last_used_at"], serde_json::Value::Null);

        // Bad input: field-level validations, bad ids.
        let bad = admin.post("/api/v2/oauth2-provider/apps", &json!({"name": "", "callback_url": "javascript:alert(1)"})).await;
        assert_eq!((bad.status.as_u16(), bad.message()), (400, "Validation failed."));
        let fields: Vec<&str> = bad.json["validations"].as_array().unwrap().iter().map(|v| v["field"].as_str().unwrap()).collect();
        assert_eq!(fields, ["name", "callback_url"]);
        let b = admin.get("/api/v2/oauth2-provider/apps/abc").await;
        assert_eq!((b.status.as_u16(), b.message()), (400, "Invalid UUID \"abc\"."));
        let b = admin.get(&format!("/api/v2/oauth2-provider/apps/{}", uuid::Uuid::new_v4())).await;
        assert_eq!(b.status.as_u16(), 404);

        // PUT replaces the callback.
        let u = admin.put(&format!("/api/v2/oauth2-provider/apps/{app}"), &json!({"name": "Renamed", "callback_url": "https://example.com/cb", "icon": "/icon.png"})).await;
        assert_eq!(u.status.as_u16(), 200, "{}", u.text);
        assert_eq!(u.json["redirect_uris"], json!(["https://example.com/cb"]));
        assert_eq!(admin.get(&format!("/api/v2/oauth2-provider/apps/{app}")).await.json["name"], "Renamed");

        // 64: a member.
        let (_, member) = admin.create_user("member").await;
        assert_eq!(member.post("/api/v2/oauth2-provider/apps", &json!({"name": "x", "callback_url": "http://localhost:1/cb"})).await.status.as_u16(), 403);
        assert_eq!(member.get(&format!("/api/v2/oauth2-provider/apps/{app}/secrets")).await.status.as_u16(), 403);
        assert_eq!(member.delete(&format!("/api/v2/oauth2-provider/apps/{app}")).await.status.as_u16(), 403);
        let l = member.get("/api/v2/oauth2-provider/apps").await;
        assert_eq!(l.status.as_u16(), 200);
        assert_eq!(l.json.as_array().unwrap().len(), 1);
        assert_eq!(member.get("/api/v2/oauth2-provider/apps?user_id=me").await.json, json!([]));

        // 65: deleting a secret; another app's secret id → 404.
        let sid = s.json["id"].as_str().unwrap();
        let other = admin.post("/api/v2/oauth2-provider/apps", &json!({"name": "Other", "callback_url": "http://127.0.0.1:1/cb"})).await;
        let other_id = other.json["id"].as_str().unwrap();
        assert_eq!(admin.delete(&format!("/api/v2/oauth2-provider/apps/{other_id}/secrets/{sid}")).await.status.as_u16(), 404);
        assert_eq!(admin.delete(&format!("/api/v2/oauth2-provider/apps/{app}/secrets/{sid}")).await.status.as_u16(), 204);
        assert_eq!(admin.get(&format!("/api/v2/oauth2-provider/apps/{app}/secrets")).await.json, json!([]));
        assert_eq!(admin.delete(&format!("/api/v2/oauth2-provider/apps/{app}")).await.status.as_u16(), 204);
        assert_eq!(admin.get(&format!("/api/v2/oauth2-provider/apps/{app}")).await.status.as_u16(), 404);
    }

    /// 9: with the experiment off the routes are not there.
    async fn gated_by_the_experiment(db: TestDb) {
        let srv = spawn_server(&db).await;
        let admin = Client::new(&srv.url).first_user().await;
        let a = admin.get("/api/v2/oauth2-provider/apps").await;
        assert_eq!((a.status.as_u16(), a.message()), (404, "Route not found."));
    }
}
