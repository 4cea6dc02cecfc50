//! The OAuth2 protocol end to end through HTTP (03 §12): discovery, authorize, token,
//! refresh, revocation and the audience check, on both backends.

use hangar_core::experiments::Experiments;
use hangar_testkit::{Client, TestServer, db_tests, spawn_server_with};
use ring::digest;
use serde_json::{Value, json};

const CALLBACK: &str = "http://localhost:9876/callback?a=1";
const VERIFIER: &str = "dBjftJeZ4CVP-mJ92K9ZeW9N1F9jMhCgBvDcHqyrK8aXwNbJvnxSaVBOfe";

fn challenge(verifier: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(digest::digest(&digest::SHA256, verifier.as_bytes()).as_ref())
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

struct Flow {
    srv: TestServer,
    admin: Client,
    app: String,
    secret: String,
}

/// A server with `oauth2` on, and an app with one secret.
async fn flow(db: &hangar_testkit::TestDb) -> Flow {
    let srv = spawn_server_with(db, |c| c.experiments = Experiments::parse(["*"]).0).await;
    let admin = Client::new(&srv.url).first_user().await;
    let a = admin
        .post(
            "/api/v2/oauth2-provider/apps",
            &json!({"name": "App", "callback_url": CALLBACK}),
        )
        .await;
    assert_eq!(a.status.as_u16(), 201, "{}", a.text);
    let app = a.json["id"].as_str().unwrap().to_owned();
    let s = admin
        .post(
            &format!("/api/v2/oauth2-provider/apps/{app}/secrets"),
            &json!({}),
        )
        .await;
    let secret = s.json["client_secret_full"].as_str().unwrap().to_owned();
    Flow {
        srv,
        admin,
        app,
        secret,
    }
}

fn query(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

impl Flow {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.srv.url)
    }

    /// POSTs the consent with the admin's header token; returns status and Location.
    async fn approve(&self, extra: &[(&str, &str)]) -> (u16, String) {
        let mut pairs = vec![("client_id", self.app.as_str()), ("response_type", "code")];
        pairs.extend_from_slice(extra);
        let res = http()
            .post(self.url(&format!("/oauth2/authorize?{}", query(&pairs))))
            .header("Coder-Session-Token", self.admin.token.clone().unwrap())
            .send()
            .await
            .unwrap();
        let loc = res
            .headers()
            .get("location")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        (res.status().as_u16(), loc)
    }

    /// The `code` of a successful approval with PKCE and `resource`.
    async fn code(&self, resource: &str) -> String {
        let ch = challenge(VERIFIER);
        let (status, loc) = self
            .approve(&[
                ("redirect_uri", CALLBACK),
                ("state", "s1"),
                ("code_challenge", &ch),
                ("code_challenge_method", "S256"),
                ("resource", resource),
            ])
            .await;
        assert_eq!(status, 302, "{loc}");
        param(&loc, "code").expect("code")
    }

    async fn token(
        &self,
        form: &[(&str, &str)],
        basic: bool,
    ) -> (u16, Value, reqwest::header::HeaderMap) {
        let mut req = http()
            .post(self.url("/oauth2/tokens"))
            .header("content-type", "application/x-www-form-urlencoded");
        let mut pairs: Vec<(&str, &str)> = form.to_vec();
        if basic {
            req = req.basic_auth(&self.app, Some(&self.secret));
        } else {
            pairs.push(("client_id", &self.app));
            pairs.push(("client_secret", &self.secret));
        }
        let res = req.body(query(&pairs)).send().await.unwrap();
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        (status, res.json().await.unwrap_or(Value::Null), headers)
    }

    async fn exchange(&self, code: &str, resource: &str) -> (u16, Value) {
        let (s, v, _) = self
            .token(
                &[
                    ("grant_type", "authorization_code"),
                    ("code", code),
                    ("code_verifier", VERIFIER),
                    ("redirect_uri", CALLBACK),
                    ("resource", resource),
                ],
                true,
            )
            .await;
        (s, v)
    }

    async fn me(&self, token: &str) -> reqwest::Response {
        http()
            .get(self.url("/api/v2/users/me"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }
}

fn param(location: &str, name: &str) -> Option<String> {
    let u = url::Url::parse(location).ok()?;
    u.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

fn is_code(s: &str) -> bool {
    let parts: Vec<&str> = s.split('_').collect();
    parts.len() == 3
        && parts[0] == "coder"
        && parts[1].len() == 10
        && parts[2].len() == 40
        && parts[1..]
            .iter()
            .all(|p| p.chars().all(|c| c.is_ascii_alphanumeric()))
}

db_tests! {
    /// 1–8: discovery documents, caching and CORS.
    async fn discovery(db: TestDb) {
        let f = flow(&db).await;
        let a = f.srv.url.as_str();
        let md: Value = http().get(f.url("/.well-known/oauth-authorization-server")).send().await.unwrap().json().await.unwrap();
        assert_eq!(md["issuer"], a);
        assert_eq!(md["token_endpoint"], format!("{a}/oauth2/tokens"));
        assert_eq!(md["code_challenge_methods_supported"], json!(["S256"]));
        assert_eq!(md["grant_types_supported"], json!(["authorization_code", "refresh_token"]));
        assert_eq!(md["token_endpoint_auth_methods_supported"], json!(["client_secret_basic", "client_secret_post", "none"]));
        let suffixed: Value = http().get(f.url("/.well-known/oauth-authorization-server/anything")).send().await.unwrap().json().await.unwrap();
        assert_eq!(suffixed, md);
        let prm = http().get(f.url("/.well-known/oauth-protected-resource")).send().await.unwrap();
        assert!(prm.headers().get("cache-control").is_none());
        let prm: Value = prm.json().await.unwrap();
        assert_eq!(prm["resource"], a);
        assert_eq!(prm["authorization_servers"], json!([a]));
        assert_eq!(prm["bearer_methods_supported"], json!(["header"]));
        let mcp: Value = http().get(f.url("/.well-known/oauth-protected-resource/api/experimental/mcp/http")).send().await.unwrap().json().await.unwrap();
        assert_eq!(mcp["resource"], format!("{a}/api/experimental/mcp/http"));
        assert_eq!(http().get(f.url("/.well-known/oauth-protected-resource/foo")).send().await.unwrap().status().as_u16(), 404);
        // A trailing slash is the same document.
        let slash: Value = http().get(f.url("/.well-known/oauth-protected-resource/")).send().await.unwrap().json().await.unwrap();
        assert_eq!(slash, prm);
        let slash: Value = http().get(f.url("/.well-known/oauth-authorization-server/")).send().await.unwrap().json().await.unwrap();
        assert_eq!(slash, md);
        // 405s of protocol routes carry no-store too.
        let r = http().get(f.url("/oauth2/revoke")).send().await.unwrap();
        assert_eq!((r.status().as_u16(), r.headers()["cache-control"].to_str().unwrap()), (405, "no-store"));
        let t = http().post(f.url("/oauth2/tokens")).send().await.unwrap();
        assert_eq!(t.headers()["cache-control"], "no-store");
        assert_eq!(t.headers()["pragma"], "no-cache");
        let pre = http()
            .request(reqwest::Method::OPTIONS, f.url("/oauth2/tokens"))
            .header("origin", "https://elsewhere.example")
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "mcp-protocol-version")
            .send()
            .await
            .unwrap();
        assert_eq!(pre.status().as_u16(), 204);
        assert_eq!(pre.headers()["access-control-allow-origin"], "*");
        assert!(pre.headers().get("access-control-allow-credentials").is_none());
    }

    /// 9: off by default.
    async fn gated(db: TestDb) {
        let srv = spawn_server_with(&db, |_| {}).await;
        let c = http();
        assert_eq!(c.get(format!("{}/.well-known/oauth-authorization-server", srv.url)).send().await.unwrap().status().as_u16(), 404);
        assert_eq!(c.post(format!("{}/oauth2/tokens", srv.url)).send().await.unwrap().status().as_u16(), 404);
        assert_eq!(c.get(format!("{}/oauth2/tokens", srv.url)).send().await.unwrap().status().as_u16(), 404);
    }

    /// 10–26: the authorization endpoint.
    async fn authorize(db: TestDb) {
        let f = flow(&db).await;
        let a = f.srv.url.clone();
        // 10: signed out → the login page with the request as `redirect`.
        let q = query(&[("client_id", &f.app), ("response_type", "code")]);
        let r = http().get(f.url(&format!("/oauth2/authorize?{q}"))).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 307);
        let loc = r.headers()["location"].to_str().unwrap().to_owned();
        let encoded: String = url::form_urlencoded::byte_serialize(format!("/oauth2/authorize?{q}").as_bytes()).collect();
        assert_eq!(loc, format!("/login?redirect={encoded}"));
        // 11: signed in → the consent page.
        let r = http().get(f.url(&format!("/oauth2/authorize?{q}"))).header("Coder-Session-Token", f.admin.token.clone().unwrap()).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200);
        assert_eq!(r.headers()["x-frame-options"], "DENY");
        let html = r.text().await.unwrap();
        assert!(html.contains("Authorize App") && html.contains("method=\"post\"") && html.contains("name=\"csrf_token\""), "{html}");
        // 12: bad clients, no redirect.
        for (id, status) in [("abc", 401), ("00000000-0000-0000-0000-000000000000", 401)] {
            let r = http().post(f.url(&format!("/oauth2/authorize?client_id={id}&response_type=code"))).header("Coder-Session-Token", f.admin.token.clone().unwrap()).send().await.unwrap();
            assert_eq!(r.status().as_u16(), status);
            let v: Value = r.json().await.unwrap();
            assert_eq!(v["error"], "invalid_client");
        }
        let r = http().post(f.url("/oauth2/authorize?response_type=code")).header("Coder-Session-Token", f.admin.token.clone().unwrap()).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 400);
        // 13: redirect URIs must match exactly.
        for bad in ["http://localhost:9876/callback/x?a=1", "http://localhost:9877/callback?a=1", "https://localhost:9876/callback?a=1"] {
            let (s, loc) = f.approve(&[("redirect_uri", bad)]).await;
            assert_eq!((s, loc.as_str()), (400, ""), "{bad}");
        }
        // 15, 16: success keeps the callback's query, echoes state, adds iss.
        let ch = challenge(VERIFIER);
        let (s, loc) = f.approve(&[("redirect_uri", CALLBACK), ("state", "a b&c"), ("code_challenge", &ch)]).await;
        assert_eq!(s, 302);
        assert!(loc.starts_with("http://localhost:9876/callback?a=1&"), "{loc}");
        assert_eq!(param(&loc, "state").as_deref(), Some("a b&c"));
        assert_eq!(param(&loc, "iss").as_deref(), Some(a.as_str()));
        let first = param(&loc, "code").unwrap();
        assert!(is_code(&first), "{first}");
        // 14: omitted redirect_uri with one registered → used; no state → none.
        let (s, loc) = f.approve(&[]).await;
        assert_eq!(s, 302);
        assert!(param(&loc, "state").is_none());
        // 17–22: redirected errors.
        for (extra, error) in [
            (vec![("code_challenge", ch.as_str()), ("code_challenge_method", "plain")], "invalid_request"),
            (vec![("code_challenge", &ch[..42])], "invalid_request"),
            (vec![("resource", "mcp.example.com")], "invalid_target"),
            (vec![("resource", "https://h/x#f")], "invalid_target"),
            (vec![("resource", "https://other.example.com")], "invalid_target"),
        ] {
            let (s, loc) = f.approve(&extra).await;
            assert_eq!(s, 302);
            assert_eq!(param(&loc, "error").as_deref(), Some(error), "{extra:?}: {loc}");
            assert!(param(&loc, "code").is_none());
        }
        let r = http().post(f.url(&format!("/oauth2/authorize?client_id={}&response_type=token", f.app))).header("Coder-Session-Token", f.admin.token.clone().unwrap()).send().await.unwrap();
        let loc = r.headers()["location"].to_str().unwrap().to_owned();
        assert_eq!(param(&loc, "error").as_deref(), Some("unsupported_response_type"));
        // 21: unknown parameters are ignored.
        let (s, loc) = f.approve(&[("prompt", "consent"), ("foo", "bar")]).await;
        assert_eq!(s, 302);
        assert!(param(&loc, "code").is_some());
        // 24: a second approval voids the first unused code.
        let (st, v) = f.exchange(&first, &a).await;
        assert_eq!((st, v["error"].as_str()), (400, Some("invalid_grant")), "{v}");
        // 23: an OAuth2 access token cannot approve.
        let code = f.code(&a).await;
        let (_, tok) = f.exchange(&code, &a).await;
        let r = http().post(f.url(&format!("/oauth2/authorize?client_id={}&response_type=code", f.app))).bearer_auth(tok["access_token"].as_str().unwrap()).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 403);
        // …nor manage apps, nor mint API keys.
        for (method, path) in [("GET", "/api/v2/oauth2-provider/apps".to_owned()), ("POST", format!("/api/v2/oauth2-provider/apps/{}/secrets", f.app)), ("POST", "/api/v2/users/me/keys/tokens".to_owned())] {
            let r = http().request(method.parse().unwrap(), f.url(&path)).bearer_auth(tok["access_token"].as_str().unwrap()).json(&json!({})).send().await.unwrap();
            assert_eq!(r.status().as_u16(), 403, "{method} {path}");
        }
        // A cookie session without the CSRF token is refused.
        let r = http().post(f.url(&format!("/oauth2/authorize?client_id={}&response_type=code", f.app)))
            .header("cookie", format!("coder_session_token={}", f.admin.token.clone().unwrap()))
            .send().await.unwrap();
        assert_eq!(r.status().as_u16(), 403);
    }

    /// 27–40: the token endpoint.
    async fn token_endpoint(db: TestDb) {
        let f = flow(&db).await;
        let a = f.srv.url.clone();
        let code = f.code(&a).await;
        let (s, tok) = f.exchange(&code, &a).await;
        assert_eq!(s, 200, "{tok}");
        let access = tok["access_token"].as_str().unwrap().to_owned();
        let (id, secret) = access.split_once('-').unwrap();
        assert_eq!((id.len(), secret.len()), (10, 22));
        assert_eq!(tok["token_type"], "Bearer");
        assert_eq!(tok["expires_in"], 3600);
        assert!(is_code(tok["refresh_token"].as_str().unwrap()));
        assert!(tok.get("scope").is_none());
        assert_eq!(f.me(&access).await.status().as_u16(), 200);
        // 33: a reused code is refused and revokes what it issued.
        let (s, v) = f.exchange(&code, &a).await;
        assert_eq!((s, v["error"].as_str()), (400, Some("invalid_grant")));
        assert_eq!(f.me(&access).await.status().as_u16(), 401);
        // 28, 29: the alias, post auth, both at once.
        let code = f.code(&a).await;
        let res = http().post(f.url("/oauth2/token")).header("content-type", "application/x-www-form-urlencoded")
            .body(query(&[("grant_type", "authorization_code"), ("code", &code), ("code_verifier", VERIFIER), ("redirect_uri", CALLBACK), ("resource", &a), ("client_id", &f.app), ("client_secret", &f.secret)]))
            .send().await.unwrap();
        assert_eq!(res.status().as_u16(), 200);
        let res = http().post(f.url("/oauth2/tokens")).basic_auth(&f.app, Some(&f.secret)).header("content-type", "application/x-www-form-urlencoded")
            .body(query(&[("grant_type", "authorization_code"), ("code", "x"), ("client_secret", &f.secret)]))
            .send().await.unwrap();
        assert_eq!(res.status().as_u16(), 400);
        // 30: a wrong secret.
        let res = http().post(f.url("/oauth2/tokens")).basic_auth(&f.app, Some("coder_aaaaaaaaaa_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb")).header("content-type", "application/x-www-form-urlencoded")
            .body("grant_type=authorization_code&code=x").send().await.unwrap();
        assert_eq!(res.status().as_u16(), 401);
        assert!(res.headers()["www-authenticate"].to_str().unwrap().starts_with("Basic"));
        let v: Value = res.json().await.unwrap();
        assert_eq!(v["error"], "invalid_client");
        assert_eq!(v.as_object().unwrap().len(), 2);
        // 31: grant types.
        for (form, error) in [("code=x", "invalid_request"), ("grant_type=foo", "unsupported_grant_type"), ("grant_type=client_credentials", "unsupported_grant_type")] {
            let res = http().post(f.url("/oauth2/tokens")).basic_auth(&f.app, Some(&f.secret)).header("content-type", "application/x-www-form-urlencoded").body(form).send().await.unwrap();
            let v: Value = res.json().await.unwrap();
            assert_eq!(v["error"], error, "{form}");
        }
        // 32: expiry.
        let code = f.code(&a).await;
        f.srv.clock.advance(chrono::TimeDelta::seconds(601));
        let (s, v) = f.exchange(&code, &a).await;
        assert_eq!((s, v["error"].as_str()), (400, Some("invalid_grant")));
        // 33: a wrong verifier, then the right one.
        let code = f.code(&a).await;
        let (_, v, _) = f.token(&[("grant_type", "authorization_code"), ("code", &code), ("code_verifier", &"x".repeat(43)), ("redirect_uri", CALLBACK), ("resource", &a)], true).await;
        assert_eq!(v["error"], "invalid_grant");
        let (_, v) = f.exchange(&code, &a).await;
        assert_eq!(v["error"], "invalid_grant");
        // 34: a verifier for a code issued without a challenge.
        let (_, loc) = f.approve(&[("redirect_uri", CALLBACK), ("resource", &a)]).await;
        let plain = param(&loc, "code").unwrap();
        let (_, v) = f.exchange(&plain, &a).await;
        assert_eq!(v["error"], "invalid_grant");
        // 18: a challenge without a method is S256.
        let (_, loc) = f.approve(&[("redirect_uri", CALLBACK), ("resource", &a), ("code_challenge", &challenge(VERIFIER))]).await;
        let (s, v) = f.exchange(&param(&loc, "code").unwrap(), &a).await;
        assert_eq!(s, 200, "{v}");
                // 35, 36: redirect URI and resource must repeat the authorization request.
        let code = f.code(&a).await;
        let (_, v, _) = f.token(&[("grant_type", "authorization_code"), ("code", &code), ("code_verifier", VERIFIER), ("redirect_uri", "http://localhost:9876/callback"), ("resource", &a)], true).await;
        assert_eq!(v["error"], "invalid_grant");
        let code = f.code(&a).await;
        let (_, v) = f.exchange(&code, &format!("{a}/api")).await;
        assert_eq!(v["error"], "invalid_target");
        // 37: JSON is refused as a request, not a crash.
        let res = http().post(f.url("/oauth2/tokens")).json(&json!({"grant_type": "authorization_code"})).send().await.unwrap();
        assert_eq!(res.status().as_u16(), 400);
        let v: Value = res.json().await.unwrap();
        assert_eq!(v["error"], "invalid_request");
        // 03 §8: the token endpoint's metrics.
        let m = &f.srv.state.metrics.registry;
        assert!(m.value("hangar_oauth2_token_requests_total", &[("grant_type", "authorization_code"), ("result", "success")]).unwrap_or(0.0) >= 3.0);
        assert!(m.value("hangar_oauth2_token_requests_total", &[("grant_type", "other"), ("result", "unsupported_grant_type")]).unwrap_or(0.0) >= 2.0);
        assert_eq!(m.value("hangar_oauth2_token_reuse_detected_total", &[("kind", "code")]), Some(2.0));
        assert!(m.value("hangar_oauth2_authorizations_total", &[("result", "approved")]).unwrap_or(0.0) >= 5.0);
                // 38: a second exchange for the same user and app replaces the first token.
        let (_, t1) = f.exchange(&f.code(&a).await, &a).await;
        let (_, t2) = f.exchange(&f.code(&a).await, &a).await;
        assert_eq!(f.me(t1["access_token"].as_str().unwrap()).await.status().as_u16(), 401);
        assert_eq!(f.me(t2["access_token"].as_str().unwrap()).await.status().as_u16(), 200);
    }

    /// 41–50: refresh rotation and revocation.
    async fn refresh_and_revoke(db: TestDb) {
        let f = flow(&db).await;
        let a = f.srv.url.clone();
        let (_, t) = f.exchange(&f.code(&a).await, &a).await;
        let refresh = t["refresh_token"].as_str().unwrap().to_owned();
        let (s, n, _) = f.token(&[("grant_type", "refresh_token"), ("refresh_token", &refresh), ("scope", "openid")], true).await;
        assert_eq!(s, 200, "{n}");
        assert_ne!(n["access_token"], t["access_token"]);
        assert_ne!(n["refresh_token"], t["refresh_token"]);
        assert_eq!(f.me(t["access_token"].as_str().unwrap()).await.status().as_u16(), 401);
        assert_eq!(f.me(n["access_token"].as_str().unwrap()).await.status().as_u16(), 200);
        // 42: resource must be the audience.
        let r2 = n["refresh_token"].as_str().unwrap().to_owned();
        let (_, v, _) = f.token(&[("grant_type", "refresh_token"), ("refresh_token", &r2), ("resource", "https://other.example.com")], true).await;
        assert_eq!(v["error"], "invalid_target");
        let (s, n2, _) = f.token(&[("grant_type", "refresh_token"), ("refresh_token", &r2), ("resource", &format!("{a}/"))], true).await;
        assert_eq!(s, 200, "{n2}");
        // Reuse of a spent refresh token revokes the family.
        let (_, v, _) = f.token(&[("grant_type", "refresh_token"), ("refresh_token", &r2)], true).await;
        assert_eq!(v["error"], "invalid_grant");
        assert_eq!(f.me(n2["access_token"].as_str().unwrap()).await.status().as_u16(), 401);
        // 46: revoking the refresh token kills both.
        let (_, t) = f.exchange(&f.code(&a).await, &a).await;
        let revoke = |token: String| {
            let f = &f;
            async move {
                http().post(f.url("/oauth2/revoke")).basic_auth(&f.app, Some(&f.secret)).header("content-type", "application/x-www-form-urlencoded")
                    .body(query(&[("token", &token)])).send().await.unwrap()
            }
        };
        let r = revoke(t["refresh_token"].as_str().unwrap().to_owned()).await;
        assert_eq!(r.status().as_u16(), 200);
        assert_eq!(r.text().await.unwrap(), "");
        assert_eq!(f.me(t["access_token"].as_str().unwrap()).await.status().as_u16(), 401);
        // 47: revoking the access token.
        let (_, t) = f.exchange(&f.code(&a).await, &a).await;
        assert_eq!(revoke(t["access_token"].as_str().unwrap().to_owned()).await.status().as_u16(), 200);
        assert_eq!(f.me(t["access_token"].as_str().unwrap()).await.status().as_u16(), 401);
        let (_, v, _) = f.token(&[("grant_type", "refresh_token"), ("refresh_token", t["refresh_token"].as_str().unwrap())], true).await;
        assert_eq!(v["error"], "invalid_grant");
        // 48, 49: unknown tokens are a no-op; `token` is required; GET is not allowed.
        assert_eq!(revoke("nonsense".into()).await.status().as_u16(), 200);
        let r = http().post(f.url("/oauth2/revoke")).basic_auth(&f.app, Some(&f.secret)).header("content-type", "application/x-www-form-urlencoded").body("").send().await.unwrap();
        assert_eq!(r.status().as_u16(), 400);
        assert_eq!(http().get(f.url("/oauth2/revoke")).send().await.unwrap().status().as_u16(), 405);
        // 50: the user removes their grants.
        let (_, t) = f.exchange(&f.code(&a).await, &a).await;
        let r = http().delete(f.url(&format!("/oauth2/tokens?client_id={}", f.app))).header("Coder-Session-Token", f.admin.token.clone().unwrap()).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 204);
        assert_eq!(f.me(t["access_token"].as_str().unwrap()).await.status().as_u16(), 401);
        // 45: expiry after 720h (last: the admin's session expires too).
        let (_, t) = f.exchange(&f.code(&a).await, &a).await;
        f.srv.clock.advance(chrono::TimeDelta::hours(721));
        let (_, v, _) = f.token(&[("grant_type", "refresh_token"), ("refresh_token", t["refresh_token"].as_str().unwrap())], true).await;
        assert_eq!(v["error"], "invalid_grant");
    }

    /// 51, 53, 55: audience and the challenge.
    async fn audience(db: TestDb) {
        let f = flow(&db).await;
        let a = f.srv.url.clone();
        let (_, t) = f.exchange(&f.code(&a).await, &a).await;
        assert_eq!(f.me(t["access_token"].as_str().unwrap()).await.status().as_u16(), 200);
        let (s, t) = f.exchange(&f.code(&format!("{a}/api/experimental/mcp/http")).await, &format!("{a}/api/experimental/mcp/http")).await;
        assert_eq!(s, 200, "{t}");
        let r = f.me(t["access_token"].as_str().unwrap()).await;
        assert_eq!(r.status().as_u16(), 401);
        let www = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
        assert!(www.contains("error=\"invalid_token\"") && www.contains("audience"), "{www}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["message"], "Token audience validation failed");
        let r = http().get(f.url("/api/v2/users/me")).send().await.unwrap();
        let www = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
        assert!(www.contains(&format!("resource_metadata=\"{a}/.well-known/oauth-protected-resource\"")) && !www.contains("error="), "{www}");
        for bogus in ["eyJhbGciOiJIUzI1NiJ9.e30.x", "random", "a-b"] {
            assert_eq!(f.me(bogus).await.status().as_u16(), 401);
        }
    }

    /// 57–62, 40, 3: dynamic registration and its management.
    async fn registration(db: TestDb) {
        let f = flow(&db).await;
        let reg = |body: Value| {
            let f = &f;
            async move {
                let r = http().post(f.url("/oauth2/register")).json(&body).send().await.unwrap();
                let s = r.status().as_u16();
                (s, r.json::<Value>().await.unwrap_or(Value::Null))
            }
        };
        let (s, c) = reg(json!({"redirect_uris": ["http://127.0.0.1:8765/cb"]})).await;
        assert_eq!(s, 201, "{c}");
        let id = c["client_id"].as_str().unwrap().to_owned();
        assert!(uuid::Uuid::parse_str(&id).is_ok());
        assert!(is_code(c["client_secret"].as_str().unwrap()));
        assert_eq!(c["client_secret_expires_at"], 0);
        assert_eq!(c["registration_client_uri"], format!("{}/oauth2/clients/{id}", f.srv.url));
        assert_eq!(c["redirect_uris"], json!(["http://127.0.0.1:8765/cb"]));
        assert_eq!(c["grant_types"], json!(["authorization_code", "refresh_token"]));
        assert_eq!(c["token_endpoint_auth_method"], "client_secret_basic");
        assert!(c.as_object().unwrap().values().all(|v| !v.is_null()), "{c}");
        let rat = c["registration_access_token"].as_str().unwrap().to_owned();
        for bad in [json!({}), json!({"redirect_uris": ["javascript:alert(1)"]}), json!({"redirect_uris": ["http://example.com/cb"]}),
                    json!({"redirect_uris": ["urn:ietf:wg:oauth:2.0:oob"]}), json!({"redirect_uris": ["https://h/cb#x"]})] {
            let (s, e) = reg(bad.clone()).await;
            assert_eq!((s, e["error"].as_str()), (400, Some("invalid_redirect_uri")), "{bad}");
        }
        assert_eq!(reg(json!({"redirect_uris": ["cursor://x.y/cb"]})).await.0, 201);
        let (s, e) = reg(json!({"redirect_uris": ["http://localhost:1/cb"], "grant_types": ["client_credentials"]})).await;
        assert_eq!((s, e["error"].as_str()), (400, Some("invalid_client_metadata")));
        assert_eq!(reg(json!({"redirect_uris": ["http://localhost:1/cb"], "client_name": "twice"})).await.0, 201);
        assert_eq!(reg(json!({"redirect_uris": ["http://localhost:1/cb"], "client_name": "twice"})).await.0, 201);
        let r = http().post(f.url("/oauth2/register")).header("content-type", "application/json").body("{").send().await.unwrap();
        assert_eq!(r.status().as_u16(), 400);
        // NUL cannot be stored in PostgreSQL text: refused, never a 500.
        let (s, e) = reg(json!({"redirect_uris": ["http://localhost:1/cb"], "client_name": "a\u{0}b"})).await;
        assert_eq!((s, e["error"].as_str()), (400, Some("invalid_client_metadata")));
        // 60: reading with the registration access token.
        let get = |token: Option<String>| {
            let f = &f;
            let id = id.clone();
            async move {
                let mut r = http().get(f.url(&format!("/oauth2/clients/{id}")));
                if let Some(t) = token {
                    r = r.bearer_auth(t);
                }
                r.send().await.unwrap()
            }
        };
        let r = get(Some(rat.clone())).await;
        assert_eq!(r.status().as_u16(), 200);
        let doc: Value = r.json().await.unwrap();
        assert!(doc.get("registration_access_token").is_none() && doc.get("client_secret").is_none(), "{doc}");
        for t in [None, Some("wrong".to_owned())] {
            let r = get(t).await;
            assert_eq!(r.status().as_u16(), 401);
            assert!(r.headers()["www-authenticate"].to_str().unwrap().contains("invalid_token"));
        }
        // 61: PUT replaces the redirect URIs.
        let r = http().put(f.url(&format!("/oauth2/clients/{id}"))).bearer_auth(&rat)
            .json(&json!({"client_id": id, "redirect_uris": ["http://127.0.0.1:8766/new"]})).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let q = |redirect: &str| query(&[("client_id", &id), ("response_type", "code"), ("redirect_uri", redirect), ("code_challenge", &challenge(VERIFIER))]);
        let ok = http().post(f.url(&format!("/oauth2/authorize?{}", q("http://127.0.0.1:8766/new")))).header("Coder-Session-Token", f.admin.token.clone().unwrap()).send().await.unwrap();
        assert_eq!(ok.status().as_u16(), 302);
        let old = http().post(f.url(&format!("/oauth2/authorize?{}", q("http://127.0.0.1:8765/cb")))).header("Coder-Session-Token", f.admin.token.clone().unwrap()).send().await.unwrap();
        assert_eq!(old.status().as_u16(), 400);

        // 40: a public client exchanges with its id and verifier only.
        let (_, p) = reg(json!({"redirect_uris": ["http://127.0.0.1:9000/cb"], "token_endpoint_auth_method": "none"})).await;
        let pid = p["client_id"].as_str().unwrap().to_owned();
        assert!(p.get("client_secret").is_none());
        let approve = http().post(f.url(&format!("/oauth2/authorize?{}", query(&[("client_id", &pid), ("response_type", "code"), ("code_challenge", &challenge(VERIFIER))]))))
            .header("Coder-Session-Token", f.admin.token.clone().unwrap()).send().await.unwrap();
        let code = param(approve.headers()["location"].to_str().unwrap(), "code").unwrap();
        // 22: a public client without a challenge is refused.
        let no_pkce = http().post(f.url(&format!("/oauth2/authorize?{}", query(&[("client_id", &pid), ("response_type", "code")]))))
            .header("Coder-Session-Token", f.admin.token.clone().unwrap()).send().await.unwrap();
        assert_eq!(param(no_pkce.headers()["location"].to_str().unwrap(), "error").as_deref(), Some("invalid_request"));
        let form = |extra: &[(&str, &str)]| {
            let mut p = vec![("grant_type", "authorization_code"), ("code", code.as_str()), ("code_verifier", VERIFIER), ("client_id", pid.as_str())];
            p.extend_from_slice(extra);
            query(&p)
        };
        let with_secret = http().post(f.url("/oauth2/tokens")).header("content-type", "application/x-www-form-urlencoded").body(form(&[("client_secret", &f.secret)])).send().await.unwrap();
        assert_eq!(with_secret.status().as_u16(), 401);
        let ok = http().post(f.url("/oauth2/tokens")).header("content-type", "application/x-www-form-urlencoded").body(form(&[])).send().await.unwrap();
        assert_eq!(ok.status().as_u16(), 200);

        // §5.4: an app without the refresh grant gets `unauthorized_client` for it, before
        // its credentials are looked at, and its code exchange returns no refresh token.
        let (_, only_code) = reg(json!({"redirect_uris": ["http://127.0.0.1:9100/cb"], "grant_types": ["authorization_code"]})).await;
        let oc = only_code["client_id"].as_str().unwrap().to_owned();
        let r = http().post(f.url("/oauth2/tokens")).basic_auth(&oc, Some("wrong")).header("content-type", "application/x-www-form-urlencoded")
            .body("grant_type=refresh_token&refresh_token=x").send().await.unwrap();
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"], "unauthorized_client");
        let approve = http().post(f.url(&format!("/oauth2/authorize?{}", query(&[("client_id", &oc), ("response_type", "code"), ("code_challenge", &challenge(VERIFIER))]))))
            .header("Coder-Session-Token", f.admin.token.clone().unwrap()).send().await.unwrap();
        let oc_code = param(approve.headers()["location"].to_str().unwrap(), "code").unwrap();
        let r = http().post(f.url("/oauth2/tokens")).basic_auth(&oc, Some(only_code["client_secret"].as_str().unwrap())).header("content-type", "application/x-www-form-urlencoded")
            .body(query(&[("grant_type", "authorization_code"), ("code", &oc_code), ("code_verifier", VERIFIER)])).send().await.unwrap();
        let v: Value = r.json().await.unwrap();
        assert!(v["access_token"].is_string() && v.get("refresh_token").is_none(), "{v}");

        // 62: deleting the client kills its secret and tokens.
        let r = http().delete(f.url(&format!("/oauth2/clients/{id}"))).bearer_auth(&rat).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 204);
        assert_eq!(get(Some(rat)).await.status().as_u16(), 401);
        let tok: Value = ok.json().await.unwrap();
        let r = http().delete(f.url(&format!("/oauth2/clients/{pid}"))).bearer_auth(p["registration_access_token"].as_str().unwrap()).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 204);
        assert_eq!(f.me(tok["access_token"].as_str().unwrap()).await.status().as_u16(), 401);

        // 3: with registration off.
        let srv = spawn_server_with(&db, |c| {
            c.experiments = Experiments::parse(["*"]).0;
            c.oauth2.dcr_enabled = false;
        }).await;
        let md: Value = http().get(format!("{}/.well-known/oauth-authorization-server", srv.url)).send().await.unwrap().json().await.unwrap();
        assert!(md.get("registration_endpoint").is_none());
        let r = http().post(format!("{}/oauth2/register", srv.url)).json(&json!({"redirect_uris": ["http://localhost:1/cb"]})).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 403);
        let e: Value = r.json().await.unwrap();
        assert_eq!(e["error"], "access_denied");
    }

    /// 03 §7: the sweeper deletes expired codes, tokens, rotations and unused registered clients.
    async fn sweeper(db: TestDb) {
        let f = flow(&db).await;
        let a = f.srv.url.clone();
        let (_, t) = f.exchange(&f.code(&a).await, &a).await;
        let (s, _, _) = f.token(&[("grant_type", "refresh_token"), ("refresh_token", t["refresh_token"].as_str().unwrap())], true).await;
        assert_eq!(s, 200);
        let _unused_code = f.code(&a).await;
        let r = http().post(f.url("/oauth2/register")).json(&json!({"redirect_uris": ["http://127.0.0.1:1/cb"]})).send().await.unwrap();
        let client = r.json::<Value>().await.unwrap()["client_id"].as_str().unwrap().to_owned();
        let ttl = Some(chrono::TimeDelta::hours(720));
        let none: Vec<u64> = f.srv.state.oauth2.sweep(ttl).await.into_iter().map(|(_, n)| n).collect();
        assert_eq!(none, [0, 0, 0, 0]);
        f.srv.clock.advance(chrono::TimeDelta::hours(721));
        let swept: Vec<(&str, u64)> = f.srv.state.oauth2.sweep(ttl).await.into_iter().map(|(k, n)| (k.as_str(), n)).collect();
        // Codes: the exchanged one and the unused one; tokens: the live pair; one rotation; the
        // registered client (never used). The admin-made app stays.
        assert_eq!(swept, [("codes", 2), ("tokens", 1), ("rotations", 1), ("clients", 1)]);
        use hangar_oauth2_provider::store::OAuth2Store;
        assert!(f.srv.db().app_by_id(uuid::Uuid::parse_str(&client).unwrap()).await.unwrap().is_none());
        assert!(f.srv.db().app_by_id(uuid::Uuid::parse_str(&f.app).unwrap()).await.unwrap().is_some());
    }

    /// 03 §5.9 and 54, 56, 9: the MCP endpoint with user keys and OAuth2 tokens.
    async fn mcp_endpoint(db: TestDb) {
        let f = flow(&db).await;
        let a = f.srv.url.clone();
        let mcp = f.url("/api/experimental/mcp/http");
        let rpc = |token: Option<String>, body: Value| {
            let mcp = mcp.clone();
            async move {
                let mut r = http().post(&mcp)
                    .header("accept", "application/json, text/event-stream")
                    .header("mcp-protocol-version", "2025-06-18")
                    .json(&body);
                if let Some(t) = token {
                    r = r.bearer_auth(t);
                }
                r.send().await.unwrap()
            }
        };
        let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}}});
        // 54: no token.
        let r = rpc(None, init.clone()).await;
        assert_eq!(r.status().as_u16(), 401);
        let www = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
        assert!(www.contains(&format!("resource_metadata=\"{a}/.well-known/oauth-protected-resource/api/experimental/mcp/http\"")), "{www}");
        assert!(r.headers()["access-control-expose-headers"].to_str().unwrap().contains("WWW-Authenticate"));
        // 56: a cookie or a query token does not count here.
        let token = f.admin.token.clone().unwrap();
        let r = http().post(&mcp).header("cookie", format!("coder_session_token={token}")).json(&init).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 401);
        let r = http().post(format!("{mcp}?coder_session_token={token}")).json(&init).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 401);
        // A session token works; initialize, list, call.
        let r = rpc(Some(token.clone()), init.clone()).await;
        assert_eq!(r.status().as_u16(), 200);
        assert!(r.headers().get("mcp-session-id").is_none());
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["result"]["serverInfo"]["name"], "hangar");
        let list: Value = rpc(Some(token.clone()), json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"})).await.json().await.unwrap();
        let names: Vec<&str> = list["result"]["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["coder_get_authenticated_user", "coder_list_templates", "coder_list_workspaces", "coder_get_workspace", "coder_report_task"]);
        assert_eq!(list["result"]["tools"][0]["annotations"]["readOnlyHint"], true);
        // An M-bound OAuth2 token works on MCP only.
        let m = format!("{a}/api/experimental/mcp/http");
        let (_, t) = f.exchange(&f.code(&m).await, &m).await;
        let access = t["access_token"].as_str().unwrap().to_owned();
        let call = |name: &str, args: Value| json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": name, "arguments": args}});
        let r: Value = rpc(Some(access.clone()), call("coder_get_authenticated_user", json!({}))).await.json().await.unwrap();
        let user: Value = serde_json::from_str(r["result"]["content"][0]["text"].as_str().unwrap()).unwrap();
        assert_eq!(user["username"], "admin");
        assert_eq!(f.me(&access).await.status().as_u16(), 401);
        let r: Value = rpc(Some(access.clone()), call("coder_list_workspaces", json!({}))).await.json().await.unwrap();
        assert_eq!(r["result"]["content"][0]["text"], "[]");
        let r: Value = rpc(Some(access.clone()), call("coder_get_workspace", json!({"workspace_id": "nope"}))).await.json().await.unwrap();
        assert_eq!(r["result"]["isError"], true);
        assert_eq!(r["result"]["content"][0]["text"], "Workspace not found.");
        let r: Value = rpc(Some(access.clone()), call("coder_get_workspace", json!({}))).await.json().await.unwrap();
        assert_eq!(r["error"]["code"], -32602, "{r}");
        // GET is not a stream here.
        let r = http().get(&mcp).bearer_auth(&access).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 405);
        // 9: with mcp-server-http off, the route is not there.
        let srv = spawn_server_with(&db, |c| c.experiments = Experiments::parse(["oauth2"]).0).await;
        assert_eq!(http().post(format!("{}/api/experimental/mcp/http", srv.url)).json(&init).send().await.unwrap().status().as_u16(), 404);
    }

    /// 25, 26, 43, 48, 52, 65: grants are bound to their client, secret and deployment.
    async fn grants_are_bound(db: TestDb) {
        let f = flow(&db).await;
        let a = f.srv.url.clone();
        // 26: the consent page's Cancel link.
        let q = query(&[("client_id", &f.app), ("response_type", "code"), ("state", "st&1")]);
        let html = http().get(f.url(&format!("/oauth2/authorize?{q}"))).header("Coder-Session-Token", f.admin.token.clone().unwrap()).send().await.unwrap().text().await.unwrap();
        assert!(html.contains("http://localhost:9876/callback?a=1&amp;error=access_denied"), "{html}");
        assert!(html.contains("state=st%261"), "{html}");
        // 25: codes are stored as a 10-byte prefix and a 32-byte hash.
        let code = f.code(&a).await;
        use hangar_oauth2_provider::store::OAuth2Store;
        let parts: Vec<&str> = code.split('_').collect();
        let row = f.srv.db().code_by_prefix(parts[1].as_bytes(), uuid::Uuid::parse_str(&f.app).unwrap()).await.unwrap().unwrap();
        assert_eq!((row.secret_prefix.len(), row.hashed_secret.len()), (10, 32));
        assert!(!row.hashed_secret.windows(parts[2].len()).any(|w| w == parts[2].as_bytes()));
        let (_, t) = f.exchange(&code, &a).await;
        let refresh = t["refresh_token"].as_str().unwrap().to_owned();

        // A second app, with its own secret.
        let b = f.admin.post("/api/v2/oauth2-provider/apps", &json!({"name": "B", "callback_url": "http://localhost:9999/cb"})).await;
        let b_id = b.json["id"].as_str().unwrap().to_owned();
        let b_secret = f.admin.post(&format!("/api/v2/oauth2-provider/apps/{b_id}/secrets"), &json!({})).await.json["client_secret_full"].as_str().unwrap().to_owned();
        let as_b = |form: String| {
            let f = &f;
            let (b_id, b_secret) = (b_id.clone(), b_secret.clone());
            async move {
                http().post(f.url(&form)).basic_auth(b_id, Some(b_secret)).header("content-type", "application/x-www-form-urlencoded")
            }
        };
        // 43: B cannot refresh A's token; A still can.
        let r = as_b("/oauth2/tokens".into()).await.body(query(&[("grant_type", "refresh_token"), ("refresh_token", &refresh)])).send().await.unwrap();
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"], "invalid_grant");
        // 48: B revoking A's token is a no-op.
        let r = as_b("/oauth2/revoke".into()).await.body(query(&[("token", t["access_token"].as_str().unwrap())])).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200);
        assert_eq!(f.me(t["access_token"].as_str().unwrap()).await.status().as_u16(), 200);
        // A's id with B's secret.
        let r = http().post(f.url("/oauth2/tokens")).basic_auth(&f.app, Some(&b_secret)).header("content-type", "application/x-www-form-urlencoded")
            .body(query(&[("grant_type", "refresh_token"), ("refresh_token", &refresh)])).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 401);
        let (s, n, _) = f.token(&[("grant_type", "refresh_token"), ("refresh_token", &refresh)], true).await;
        assert_eq!(s, 200, "{n}");
        let access = n["access_token"].as_str().unwrap().to_owned();

        // 52: the same database behind another access URL refuses the bound token.
        let port = f.srv.addr.port();
        let other = spawn_server_with(&db, |c| {
            c.experiments = Experiments::parse(["*"]).0;
            c.access_url = format!("http://localhost:{port}").parse().unwrap();
        }).await;
        let r = http().get(format!("{}/api/v2/users/me", other.url)).bearer_auth(&access).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 401);
        assert!(r.headers()["www-authenticate"].to_str().unwrap().contains("error=\"invalid_token\""));
        let v: Value = r.json().await.unwrap();
        assert!(v["message"].as_str().unwrap().contains("audience"), "{v}");

        // 65: deleting the secret kills the tokens issued with it.
        let secrets = f.admin.get(&format!("/api/v2/oauth2-provider/apps/{}/secrets", f.app)).await;
        let sid = secrets.json[0]["id"].as_str().unwrap().to_owned();
        assert_eq!(f.admin.delete(&format!("/api/v2/oauth2-provider/apps/{}/secrets/{sid}", f.app)).await.status.as_u16(), 204);
        assert_eq!(f.me(&access).await.status().as_u16(), 401);
        let (s, _, _) = f.token(&[("grant_type", "refresh_token"), ("refresh_token", n["refresh_token"].as_str().unwrap())], true).await;
        assert_eq!(s, 401);
    }

    /// 03 §5.9: the workspace tools, `coder_report_task` included, on a running echo workspace.
    async fn mcp_workspace_tools(db: TestDb) {
        let f = flow(&db).await;
        let (t, _) = crate::workspaces::template(&f.admin, "docker", crate::workspaces::echo_template()).await;
        let w = f.admin.post("/api/v2/users/me/workspaces", &json!({"name": "dev", "template_id": t["id"]})).await;
        let wid = w.json["id"].as_str().unwrap().to_owned();
        crate::workspaces::wait_for(&f.admin, &format!("/api/v2/workspaces/{wid}"), |j| j["latest_build"]["status"] == "running").await;
        let token = f.admin.token.clone().unwrap();
        let call = |name: &str, args: Value| {
            let body = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": name, "arguments": args}});
            let (url, token) = (f.url("/api/experimental/mcp/http"), token.clone());
            async move {
                let v: Value = http().post(url).bearer_auth(token).header("accept", "application/json, text/event-stream")
                    .header("mcp-protocol-version", "2025-06-18").json(&body).send().await.unwrap().json().await.unwrap();
                v["result"].clone()
            }
        };
        let r = call("coder_list_templates", json!({})).await;
        let list: Value = serde_json::from_str(r["content"][0]["text"].as_str().unwrap()).unwrap();
        assert_eq!(list[0]["name"], "docker");
        assert!(list[0].get("active_user_count").is_some() && list[0].get("active_version_id").is_some(), "{list}");
        let r = call("coder_list_workspaces", json!({"owner": "me"})).await;
        let list: Value = serde_json::from_str(r["content"][0]["text"].as_str().unwrap()).unwrap();
        assert_eq!(list[0]["name"], "dev");
        assert_eq!(list[0]["template_name"], "docker");
        assert_eq!(list[0]["outdated"], false);
        for id in [wid.as_str(), "admin/dev", "dev"] {
            let r = call("coder_get_workspace", json!({"workspace_id": id})).await;
            let ws: Value = serde_json::from_str(r["content"][0]["text"].as_str().unwrap()).unwrap();
            assert_eq!(ws["id"], wid.as_str(), "{id}");
        }
        let r = call("coder_report_task", json!({"workspace": "dev", "app_slug": "code", "state": "working", "summary": "Running tests", "link": ""})).await;
        assert_eq!(r["content"][0]["text"], "{\"message\":\"Thanks for reporting!\"}", "{r}");
        let ws = f.admin.get(&format!("/api/v2/workspaces/{wid}")).await;
        assert_eq!(ws.json["latest_app_status"]["message"], "Running tests");
        assert_eq!(ws.json["latest_app_status"]["state"], "working");
        let r = call("coder_report_task", json!({"workspace": "dev", "app_slug": "nope", "state": "idle", "summary": ""})).await;
        assert_eq!((r["isError"].as_bool(), r["content"][0]["text"].as_str()), (Some(true), Some("Failed to get workspace app.")));
        let r = call("coder_report_task", json!({"workspace": "dev", "app_slug": "code", "state": "working", "summary": "x".repeat(161)})).await;
        assert_eq!(r["content"][0]["text"], "Message is too long.");
        // Another member sees no such workspace, and cannot report on it.
        let (_, bob) = f.admin.create_user("bob").await;
        let body = json!({"jsonrpc": "2.0", "id": 8, "method": "tools/call", "params": {"name": "coder_report_task",
            "arguments": {"workspace": "admin/dev", "app_slug": "code", "state": "idle", "summary": ""}}});
        let v: Value = http().post(f.url("/api/experimental/mcp/http")).header("Coder-Session-Token", bob.token.clone().unwrap())
            .header("accept", "application/json, text/event-stream").json(&body).send().await.unwrap().json().await.unwrap();
        assert_eq!(v["result"]["content"][0]["text"], "Workspace not found.", "{v}");
    }

    /// 03 §7: two refreshes of one token race; the loser's reuse revokes the family, so
    /// neither new pair survives (RFC 9700).
    async fn refresh_race(db: TestDb) {
        let f = flow(&db).await;
        let a = f.srv.url.clone();
        let (_, t) = f.exchange(&f.code(&a).await, &a).await;
        let refresh = t["refresh_token"].as_str().unwrap().to_owned();
        let form = [("grant_type", "refresh_token"), ("refresh_token", refresh.as_str())];
        let (one, two) = tokio::join!(f.token(&form, true), f.token(&form, true));
        let statuses = [one.0, two.0];
        assert!(statuses.contains(&400), "{statuses:?}");
        for (status, body, _) in [one, two] {
            if status == 200 {
                assert_eq!(f.me(body["access_token"].as_str().unwrap()).await.status().as_u16(), 401);
            } else {
                assert_eq!(body["error"], "invalid_grant");
            }
        }
    }

    /// 03 §5.3: the login page the consent flow sends signed-out users to.
    async fn login_page(db: TestDb) {
        let f = flow(&db).await;
        let r = http().get(f.url("/login?redirect=%2Foauth2%2Fauthorize%3Fclient_id%3Dx")).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let html = r.text().await.unwrap();
        assert!(html.contains("name=\"password\"") && html.contains("method=\"post\""), "{html}");
        let post = |target: &str, password: &str| {
            let url = f.url(&format!("/login?redirect={target}"));
            let body = query(&[("email", "admin@example.com"), ("password", password)]);
            async move {
                http().post(url).header("content-type", "application/x-www-form-urlencoded").body(body).send().await.unwrap()
            }
        };
        let ok = post("%2Foauth2%2Fauthorize%3Fclient_id%3Dx", "SomeSecurePassword!").await;
        assert_eq!(ok.status().as_u16(), 303);
        assert_eq!(ok.headers()["location"], "/oauth2/authorize?client_id=x");
        let cookie = ok.headers()["set-cookie"].to_str().unwrap().to_owned();
        assert!(cookie.starts_with("coder_session_token="), "{cookie}");
        // The cookie signs the user in on the consent page.
        let session = cookie.split(';').next().unwrap().to_owned();
        let q = query(&[("client_id", &f.app), ("response_type", "code")]);
        let page = http().get(f.url(&format!("/oauth2/authorize?{q}"))).header("cookie", &session).send().await.unwrap();
        assert_eq!(page.status().as_u16(), 200);
        // …and the consent form's CSRF token lets a cookie session approve.
        let html = page.text().await.unwrap();
        let csrf = html.split("name=\"csrf_token\" value=\"").nth(1).and_then(|r| r.split('"').next()).unwrap().to_owned();
        let approve = http().post(f.url(&format!("/oauth2/authorize?{q}"))).header("cookie", &session)
            .header("content-type", "application/x-www-form-urlencoded").body(query(&[("csrf_token", &csrf)])).send().await.unwrap();
        assert_eq!(approve.status().as_u16(), 302);
        assert!(param(approve.headers()["location"].to_str().unwrap(), "code").is_some());
        let forged = http().post(f.url(&format!("/oauth2/authorize?{q}"))).header("cookie", &session)
            .header("content-type", "application/x-www-form-urlencoded").body(query(&[("csrf_token", "forged")])).send().await.unwrap();
        assert_eq!(forged.status().as_u16(), 403);
        // Only local targets; wrong passwords get the page again with 401.
        assert_eq!(post("%2F%2Fevil.example", "SomeSecurePassword!").await.headers()["location"], "/");
        for evil in ["%2F%09%2Fevil.example", "%2F%5Cevil.example", "https%3A%2F%2Fevil.example"] {
            assert_eq!(post(evil, "SomeSecurePassword!").await.headers()["location"], "/", "{evil}");
        }
        let bad = post("%2F", "wrong").await;
        assert_eq!(bad.status().as_u16(), 401);
        assert!(bad.text().await.unwrap().contains("Incorrect email or password."));
    }

    /// 03 §11: an OAuth2-authenticated request runs as many SQL statements as an API-key one
    /// (the audience comes with the key's one authentication SELECT).
    async fn statement_parity(db: TestDb) {
        let f = flow(&db).await;
        let a = f.srv.url.clone();
        let (_, t) = f.exchange(&f.code(&a).await, &a).await;
        let access = t["access_token"].as_str().unwrap().to_owned();
        let key = f.admin.token.clone().unwrap();
        let count = |token: String| {
            let f = &f;
            async move {
                f.me(&token).await; // warm: fresh last_used, cache filled where there is one
                let (s0, w0) = (f.srv.counter.selects(), f.srv.counter.writes());
                assert_eq!(f.me(&token).await.status().as_u16(), 200);
                (f.srv.counter.selects() - s0, f.srv.counter.writes() - w0)
            }
        };
        let plain = count(key).await;
        let oauth = count(access).await;
        assert_eq!(oauth, plain);
    }

    /// §5.4: a suspended user's code and refresh token are refused.
    async fn suspended_users(db: TestDb) {
        let mut f = flow(&db).await;
        let a = f.srv.url.clone();
        let (_, bob) = f.admin.create_user("bob").await;
        let admin = std::mem::replace(&mut f.admin, bob);
        let (_, t) = f.exchange(&f.code(&a).await, &a).await;
        let pending = f.code(&a).await;
        let s = admin.put("/api/v2/users/bob/status/suspend", &json!({})).await;
        assert_eq!(s.status.as_u16(), 200, "{}", s.text);
        let (_, v, _) = f.token(&[("grant_type", "refresh_token"), ("refresh_token", t["refresh_token"].as_str().unwrap())], true).await;
        assert_eq!(v["error"], "invalid_grant");
        let (_, v) = f.exchange(&pending, &a).await;
        assert_eq!(v["error"], "invalid_grant");
        // Nothing changed: once active again, the refresh token still works.
        assert_eq!(admin.put("/api/v2/users/bob/status/activate", &json!({})).await.status.as_u16(), 200);
        let (s, v, _) = f.token(&[("grant_type", "refresh_token"), ("refresh_token", t["refresh_token"].as_str().unwrap())], true).await;
        assert_eq!(s, 200, "{v}");
    }

    /// 03 §7: two exchanges of one code race; the loser's reuse revokes whatever the winner
    /// got, whichever commits first.
    async fn code_race(db: TestDb) {
        let f = flow(&db).await;
        let a = f.srv.url.clone();
        for _ in 0..3 {
            let code = f.code(&a).await;
            let ((s1, t1), (s2, t2)) = tokio::join!(f.exchange(&code, &a), f.exchange(&code, &a));
            assert!([s1, s2].contains(&400), "{s1} {s2}");
            for (s, t) in [(s1, t1), (s2, t2)] {
                if s == 200 {
                    assert_eq!(f.me(t["access_token"].as_str().unwrap()).await.status().as_u16(), 401);
                } else {
                    assert_eq!(t["error"], "invalid_grant");
                }
            }
        }
    }
}
