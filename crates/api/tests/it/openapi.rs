//! The committed OpenAPI document is current, and every documented route is served.

use hangar_testkit::{Client, db_tests, spawn_server_with};

#[test]
fn committed_openapi_is_current() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/api/openapi.json");
    if std::env::var("HANGAR_UPDATE_SNAPSHOTS").as_deref() == Ok("1") {
        std::fs::write(&path, hangar_api::openapi::document(None)).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == hangar_api::openapi::document(None),
        "docs/api/openapi.json is stale: run `cargo xtask openapi`"
    );
    let doc: serde_json::Value = serde_json::from_str(&committed).unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
}

db_tests! {
    async fn documented_routes_are_served(db: TestDb) {
        let srv = spawn_server_with(&db, |c| c.experiments = hangar_core::experiments::Experiments::parse(["*"]).0).await;
        let admin = Client::new(&srv.url).first_user().await;
        let served = admin.get("/api/v2/openapi.json").await;
        assert_eq!(served.status.as_u16(), 200);
        for route in hangar_api::routes::ROUTES {
            let path = route
                .path
                .replace("{user}", "me")
                .replace("{organization}", "default")
                .replace("{group}", "00000000-0000-0000-0000-000000000000")
                .replace("{keyid}", "nokey")
                .replace("{keyname}", "noname")
                .replace("{app}", "00000000-0000-0000-0000-000000000000")
                .replace("{secretID}", "00000000-0000-0000-0000-000000000000");
            let a = admin.send(route.method.parse().unwrap(), &path, Some("{}")).await;
            assert_ne!(a.message(), "Route not found.", "{} {}", route.method, route.path);
            assert_ne!(a.status.as_u16(), 405, "{} {}", route.method, route.path);
            assert!(served.json["paths"][route.path].is_object(), "{} missing from the served document", route.path);
        }
    }
}
