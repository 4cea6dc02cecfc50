//! A tiny HTTP client for tests against [`crate::TestServer`].

use reqwest::{Method, StatusCode};
use serde_json::Value;

/// One answer: status, headers and the body as JSON (`Value::Null` when empty or not JSON).
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
    pub json: Value,
}

impl Answer {
    pub fn message(&self) -> &str {
        self.json["message"].as_str().unwrap_or("")
    }

    pub fn detail(&self) -> &str {
        self.json["detail"].as_str().unwrap_or("")
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

#[derive(Clone)]
pub struct Client {
    base: String,
    http: reqwest::Client,
    pub token: Option<String>,
}

impl Client {
    pub fn new(base: &str) -> Self {
        Self {
            base: base.trim_end_matches('/').to_string(),
            http: reqwest::Client::new(),
            token: None,
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn with_token(&self, token: &str) -> Self {
        Self {
            token: Some(token.to_string()),
            ..self.clone()
        }
    }

    pub async fn send(&self, method: Method, path: &str, body: Option<&str>) -> Answer {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            req = req.header("Coder-Session-Token", t);
        }
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        let res = req.send().await.expect("request");
        let status = res.status();
        let headers = res.headers().clone();
        let text = res.text().await.unwrap_or_default();
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Answer {
            status,
            headers,
            text,
            json,
        }
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.send(Method::GET, path, None).await
    }

    pub async fn delete(&self, path: &str) -> Answer {
        self.send(Method::DELETE, path, None).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Answer {
        self.send(Method::POST, path, Some(&body.to_string())).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> Answer {
        self.send(Method::PUT, path, Some(&body.to_string())).await
    }

    pub async fn patch(&self, path: &str, body: &Value) -> Answer {
        self.send(Method::PATCH, path, Some(&body.to_string()))
            .await
    }

    pub async fn post_raw(&self, path: &str, body: &str) -> Answer {
        self.send(Method::POST, path, Some(body)).await
    }
}

/// The first user's credentials used by fixtures.
pub const ADMIN_EMAIL: &str = "admin@example.com";
pub const ADMIN_PASSWORD: &str = "SomeSecurePassword!";

impl Client {
    /// Creates the first user (`admin`) and returns a client logged in as it.
    pub async fn first_user(&self) -> Client {
        let a = self
            .post(
                "/api/v2/users/first",
                &serde_json::json!({"email": ADMIN_EMAIL, "username": "admin", "name": "Admin", "password": ADMIN_PASSWORD}),
            )
            .await;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
        self.login(ADMIN_EMAIL, ADMIN_PASSWORD).await
    }

    pub async fn login(&self, email: &str, password: &str) -> Client {
        let a = self
            .post(
                "/api/v2/users/login",
                &serde_json::json!({"email": email, "password": password}),
            )
            .await;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
        self.with_token(a.json["session_token"].as_str().expect("session_token"))
    }

    /// Creates an active password user in the default org and returns a client for it.
    pub async fn create_user(&self, username: &str) -> (Value, Client) {
        let org = self.get("/api/v2/organizations/default").await;
        let email = format!("{username}@example.com");
        let a = self
            .post(
                "/api/v2/users",
                &serde_json::json!({"email": email, "username": username, "password": ADMIN_PASSWORD,
                    "user_status": "active", "organization_ids": [org.json["id"]]}),
            )
            .await;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
        let c = self.clone();
        let user = a.json;
        (
            user,
            Client { token: None, ..c }
                .login(&email, ADMIN_PASSWORD)
                .await,
        )
    }
}
