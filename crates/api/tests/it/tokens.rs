//! API keys and tokens (02 §4.3, §11 items 16–18).

use hangar_testkit::{Client, db_tests, spawn_server, spawn_server_with};
use serde_json::json;

db_tests! {
    async fn token_lifecycle(db: TestDb) {
        let srv = spawn_server(&db).await;
        let admin = Client::new(&srv.url).first_user().await;
        let a = admin.post("/api/v2/users/me/keys/tokens", &json!({"token_name": "ci", "lifetime": 86_400_000_000_000i64})).await;
        assert_eq!(a.status.as_u16(), 201, "{}", a.text);
        let token = a.json["key"].as_str().unwrap().to_string();
        let key = admin.get("/api/v2/users/me/keys/tokens/ci").await;
        assert_eq!(key.json["lifetime_seconds"], 86400);
        assert_eq!(key.json["login_type"], "token");
        assert_eq!(key.json["scope"], "all");
        let again = admin.post("/api/v2/users/me/keys/tokens", &json!({"token_name": "ci", "lifetime": 86_400_000_000_000i64})).await;
        assert_eq!((again.status.as_u16(), again.message()), (409, "A token with name \"ci\" already exists."));
        let via_token = admin.with_token(&token).get("/api/v2/users/me").await;
        assert_eq!(via_token.json["username"], "admin");
        let list = admin.get("/api/v2/users/me/keys/tokens").await;
        assert_eq!(list.json.as_array().unwrap().len(), 1);
        assert_eq!(list.json[0]["username"], "admin");
        // Unnamed tokens are named after their id; bad names and lifetimes are refused.
        let a = admin.post("/api/v2/users/me/keys/tokens", &json!({})).await;
        let id = a.json["key"].as_str().unwrap().split('-').next().unwrap().to_string();
        assert_eq!(admin.get(&format!("/api/v2/users/me/keys/{id}")).await.json["token_name"], id);
        let a = admin.post("/api/v2/users/me/keys/tokens", &json!({"token_name": "bad name"})).await;
        assert_eq!(a.status.as_u16(), 400);
        let a = admin.post("/api/v2/users/me/keys/tokens", &json!({"lifetime": -1})).await;
        assert_eq!((a.message(), a.detail()), ("Failed to validate create API key request.", "lifetime must be positive number greater than 0"));
        let a = admin.post("/api/v2/users/me/keys/tokens", &json!({"scope": "everything"})).await;
        assert_eq!(a.status.as_u16(), 400);
        let config = admin.get("/api/v2/users/me/keys/tokens/tokenconfig").await;
        assert_eq!(config.text, "{\"max_token_lifetime\":3155760000000000000}");
        // Delete.
        let key_id = token.split('-').next().unwrap();
        assert_eq!(admin.delete(&format!("/api/v2/users/me/keys/{key_id}")).await.status.as_u16(), 204);
        assert_eq!(admin.with_token(&token).get("/api/v2/users/me").await.detail(), "API key is invalid.");
    }

    /// 17: the configured maximum lifetime.
    async fn max_token_lifetime(db: TestDb) {
        let srv = spawn_server_with(&db, |c| c.identity.max_token_lifetime = chrono::TimeDelta::hours(720)).await;
        let admin = Client::new(&srv.url).first_user().await;
        let a = admin.post("/api/v2/users/me/keys/tokens", &json!({"lifetime": 721i64 * 3600 * 1_000_000_000})).await;
        assert_eq!((a.status.as_u16(), a.detail()), (400, "lifetime must be less than 720h0m0s"));
    }

    /// 18: `/users/{user}/keys/{id}` means that user's key.
    async fn keys_belong_to_their_user(db: TestDb) {
        let srv = spawn_server(&db).await;
        let admin = Client::new(&srv.url).first_user().await;
        admin.create_user("alice").await;
        let (_, bob) = admin.create_user("bob").await;
        let bob_token = bob.token.clone().unwrap();
        let bob_key = bob_token.split('-').next().unwrap();
        let a = admin.delete(&format!("/api/v2/users/alice/keys/{bob_key}")).await;
        assert_eq!(a.status.as_u16(), 404);
        assert_eq!(bob.get("/api/v2/users/me").await.status.as_u16(), 200);
        // A member cannot touch another user's keys.
        assert_eq!(bob.get("/api/v2/users/alice/keys/tokens").await.status.as_u16(), 404);
        assert_eq!(bob.post("/api/v2/users/alice/keys/tokens", &json!({})).await.status.as_u16(), 404);
        // Session key creation.
        let a = bob.post("/api/v2/users/me/keys", &json!({})).await;
        assert_eq!(a.status.as_u16(), 201);
        let k = a.json["key"].as_str().unwrap().split('-').next().unwrap().to_string();
        let key = bob.get(&format!("/api/v2/users/me/keys/{k}")).await;
        assert_eq!(key.json["lifetime_seconds"], 7 * 86400);
        // include_all shows every user's tokens to the owner only.
        bob.post("/api/v2/users/me/keys/tokens", &json!({"token_name": "b"})).await;
        admin.post("/api/v2/users/me/keys/tokens", &json!({"token_name": "a"})).await;
        assert_eq!(admin.get("/api/v2/users/me/keys/tokens?include_all=true").await.json.as_array().unwrap().len(), 2);
        assert_eq!(bob.get("/api/v2/users/me/keys/tokens?include_all=true").await.json.as_array().unwrap().len(), 1);
    }
}
