//! The OAuth2 provider store and its triggers (03 §2) on both backends.

use chrono::Utc;
use hangar_core::{Clock, StoreError, SystemClock};
use hangar_oauth2_provider::model::{App, AppSecret};
use hangar_oauth2_provider::store::OAuth2Store;
use hangar_testkit::db_tests;
use uuid::Uuid;

fn secret(app: Uuid, prefix: &str) -> AppSecret {
    AppSecret {
        id: Uuid::new_v4(),
        created_at: SystemClock.now(),
        last_used_at: None,
        hashed_secret: vec![7; 32],
        display_secret: "abcdef".into(),
        app_id: app,
        secret_prefix: prefix.as_bytes().to_vec(),
    }
}

db_tests! {
    async fn apps_round_trip_and_public_apps_have_no_secrets(db: TestDb) {
        let now: chrono::DateTime<Utc> = SystemClock.now();
        let mut app = App::managed(Uuid::new_v4(), "B app".into(), "http://localhost:1/cb".into(), String::new(), now);
        app.contacts = vec!["a@example.com".into()];
        app.jwks = Some(serde_json::json!({"keys": []}));
        db.db.insert_app(&app).await.unwrap();
        let got = db.db.app_by_id(app.id).await.unwrap().unwrap();
        assert_eq!(got.redirect_uris, app.redirect_uris);
        assert_eq!(got.grant_types, ["authorization_code", "refresh_token"]);
        assert_eq!(got.contacts, app.contacts);
        assert_eq!(got.jwks, app.jwks);
        assert!(!got.dynamically_registered);

        let mut public = App::managed(Uuid::new_v4(), "A app".into(), "http://127.0.0.1:1/cb".into(), String::new(), now);
        public.client_type = "public".into();
        public.token_endpoint_auth_method = "none".into();
        db.db.insert_app(&public).await.unwrap();
        let names: Vec<String> = db.db.list_apps(None).await.unwrap().into_iter().map(|a| a.name).collect();
        assert_eq!(names, ["A app", "B app"]);
        assert!(db.db.list_apps(Some(Uuid::new_v4())).await.unwrap().is_empty());

        match db.db.insert_secret(&secret(public.id, "abcdefghij")).await {
            Err(StoreError::Violation { rule, message }) => {
                assert_eq!(rule, "oauth2_public_app_secret");
                assert_eq!(message, "hangar:oauth2_public_app_secret: public oauth2 provider apps cannot have secrets");
            }
            other => panic!("{other:?}"),
        }
        // A public app with a client auth method is refused by the CHECK.
        let mut odd = App::managed(Uuid::new_v4(), "odd".into(), "http://127.0.0.1:1/cb".into(), String::new(), now);
        odd.client_type = "public".into();
        assert!(db.db.insert_app(&odd).await.is_err());

        let s = secret(app.id, "abcdefghij");
        db.db.insert_secret(&s).await.unwrap();
        assert!(matches!(db.db.insert_secret(&secret(app.id, "abcdefghij")).await, Err(StoreError::Conflict { .. })));
        assert_eq!(db.db.secrets_of(app.id).await.unwrap(), vec![s.clone()]);
        assert!(!db.db.delete_secret(public.id, s.id).await.unwrap());
        assert!(db.db.delete_secret(app.id, s.id).await.unwrap());
        assert!(db.db.delete_app(app.id).await.unwrap());
        assert!(db.db.app_by_id(app.id).await.unwrap().is_none());
    }
}
