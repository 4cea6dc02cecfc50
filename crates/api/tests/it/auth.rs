//! The key middleware (02 §4.1, §10.2).

use hangar_testkit::{Client, db_tests, spawn_server};
use serde_json::json;

db_tests! {
    /// 9: each 401 detail, and the WWW-Authenticate challenge.
    async fn token_failures(db: TestDb) {
        let srv = spawn_server(&db).await;
        let c = Client::new(&srv.url);
        let admin = c.first_user().await;
        let none = c.get("/api/v2/users/me").await;
        assert_eq!(none.status.as_u16(), 401);
        assert_eq!(none.message(), "You are signed out or your session has expired. Please sign in again to continue.");
        assert_eq!(none.detail(), "Cookie \"coder_session_token\" or query parameter must be provided.");
        assert_eq!(
            none.header("www-authenticate"),
            format!("Bearer realm=\"coder\", resource_metadata=\"{}/.well-known/oauth-protected-resource\"", srv.url)
        );
        let bad = c.with_token("abc-def").get("/api/v2/users/me").await;
        assert_eq!(bad.detail(), "Invalid API key format: invalid API key ID length, expected 10 got 3");
        assert!(bad.header("www-authenticate").contains("error=\"invalid_token\""));
        let token = admin.token.clone().unwrap();
        let wrong_secret = format!("{}-{}", token.split('-').next().unwrap(), "a".repeat(22));
        assert_eq!(c.with_token(&wrong_secret).get("/api/v2/users/me").await.detail(), "API key secret is invalid.");
        let unknown = format!("{}-{}", "z".repeat(10), "a".repeat(22));
        assert_eq!(c.with_token(&unknown).get("/api/v2/users/me").await.detail(), "API key is invalid.");
        // Expiry via the manual clock.
        srv.clock.advance(chrono::TimeDelta::hours(25));
        let expired = admin.get("/api/v2/users/me").await;
        assert_eq!(expired.status.as_u16(), 401);
        assert!(expired.detail().starts_with("API key expired at \""), "{}", expired.detail());
    }

    /// The token is found in every source, in Coder's order.
    async fn token_sources(db: TestDb) {
        let srv = spawn_server(&db).await;
        let admin = Client::new(&srv.url).first_user().await;
        let token = admin.token.clone().unwrap();
        let http = reqwest::Client::new();
        let me = format!("{}/api/v2/users/me", srv.url);
        for req in [
            http.get(&me).header("Cookie", format!("coder_session_token={token}")),
            http.get(format!("{me}?coder_session_token={token}")),
            http.get(&me).header("Authorization", format!("Bearer {token}")),
            http.get(format!("{me}?access_token={token}")),
        ] {
            assert_eq!(req.send().await.unwrap().status().as_u16(), 200);
        }
    }

    /// 10.2: an authenticated request makes at most 2 SELECTs and no writes while
    /// `last_used` is fresh (SQLite serves repeats from the write-invalidated auth cache:
    /// 0 SELECTs); after an hour it writes once, and the next request reads again.
    async fn statement_budget(db: TestDb) {
        let srv = spawn_server(&db).await;
        let admin = Client::new(&srv.url).first_user().await;
        let sqlite = db.backend() == hangar_db::Backend::Sqlite;
        admin.get("/api/v2/experiments").await;
        let (s0, w0) = (srv.counter.selects(), srv.counter.writes());
        let a = admin.get("/api/v2/experiments").await;
        assert_eq!(a.status.as_u16(), 200);
        let fresh = if sqlite { 0 } else { 2 };
        assert_eq!((srv.counter.selects() - s0, srv.counter.writes() - w0), (fresh, 0));
        srv.clock.advance(chrono::TimeDelta::minutes(61));
        let (s0, w0) = (srv.counter.selects(), srv.counter.writes());
        admin.get("/api/v2/experiments").await;
        assert_eq!(srv.counter.selects() - s0, fresh);
        assert_eq!(srv.counter.writes() - w0, 2, "the key and the user's last_seen_at");
        let (s0, w0) = (srv.counter.selects(), srv.counter.writes());
        admin.get("/api/v2/experiments").await;
        assert_eq!((srv.counter.selects() - s0, srv.counter.writes() - w0), (2, 0));
        // A revocation is seen at once: the cached key must not outlive its deletion.
        let out = admin.post("/api/v2/users/logout", &json!({})).await;
        assert_eq!(out.status.as_u16(), 200);
        assert_eq!(admin.get("/api/v2/experiments").await.status.as_u16(), 401);
    }

    /// 33: malformed JSON → 400 and nothing changes.
    async fn malformed_json(db: TestDb) {
        let srv = spawn_server(&db).await;
        let c = Client::new(&srv.url);
        let a = c.post_raw("/api/v2/users/first", "{\"email\": ").await;
        assert_eq!((a.status.as_u16(), a.message()), (400, "Request body must be valid JSON."));
        assert_eq!(c.get("/api/v2/users/first").await.status.as_u16(), 404);
        let admin = c.first_user().await;
        let a = admin.post_raw("/api/v2/organizations", "[1,2").await;
        assert_eq!((a.status.as_u16(), a.message()), (400, "Request body must be valid JSON."));
        assert_eq!(admin.get("/api/v2/organizations").await.json.as_array().unwrap().len(), 1);
        let a = admin.post("/api/v2/organizations", &json!({"name": 7})).await;
        assert_eq!(a.status.as_u16(), 400);
    }
}
