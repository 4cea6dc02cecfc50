//! End-to-end tests of the real `hangar` binary: server start-up, migrations, and the CLI
//! against a live server (02 §11 items 31–32; 04 §5).

use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn hangar() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_hangar"));
    c.env_remove("HANGAR_URL")
        .env_remove("HANGAR_SESSION_TOKEN")
        .env_remove("HANGAR_DATABASE_URL");
    c
}

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("hangar-e2e-{tag}-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Runs `hangar server migrate` against `db_args` and checks 31's behaviour.
fn check_migrate(db_args: &[&str]) {
    let o = hangar()
        .args(["server", "migrate", "--check"])
        .args(db_args)
        .output()
        .unwrap();
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}{err}");
    assert!(out.contains("m0001_identity_schema"), "{out}");
    let o = hangar()
        .args(["server", "migrate"])
        .args(db_args)
        .output()
        .unwrap();
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}{err}");
    let applied = out
        .trim()
        .strip_prefix("Applied ")
        .and_then(|r| r.strip_suffix(" migrations."))
        .and_then(|n| n.parse::<u32>().ok());
    assert!(applied.is_some_and(|n| n >= 5), "{out}");
    let o = hangar()
        .args(["server", "migrate", "--check"])
        .args(db_args)
        .output()
        .unwrap();
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}{err}");
    assert_eq!(out.trim(), "Database is up to date.");
}

#[test]
fn migrate_check_sqlite() {
    let dir = tmpdir("migrate");
    check_migrate(&["--data-dir", dir.to_str().unwrap()]);
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn migrate_check_postgres() {
    let Ok(admin) = std::env::var("HANGAR_TEST_POSTGRES_URL") else {
        assert_ne!(
            std::env::var("HANGAR_REQUIRE_POSTGRES").as_deref(),
            Ok("1"),
            "HANGAR_TEST_POSTGRES_URL is required"
        );
        println!("skipping postgres test migrate_check_postgres: HANGAR_TEST_POSTGRES_URL not set");
        return;
    };
    let name = format!("hangar_t_{}", uuid::Uuid::new_v4().simple());
    let psql = |sql: &str| {
        let o = Command::new("psql")
            .arg(&admin)
            .arg("-qc")
            .arg(sql)
            .output()
            .expect("psql");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    psql(&format!("CREATE DATABASE {name}"));
    let mut url = url::Url::parse(&admin).unwrap();
    url.set_path(&format!("/{name}"));
    check_migrate(&["--database-url", url.as_str()]);
    psql(&format!("DROP DATABASE {name} WITH (FORCE)"));
}

struct Server {
    child: Child,
    url: String,
}

impl Server {
    fn start(data_dir: &Path) -> Server {
        Self::start_with(data_dir, &[])
    }

    fn start_with(data_dir: &Path, extra: &[&str]) -> Server {
        let mut child = hangar()
            .args([
                "server",
                "--http-address",
                "127.0.0.1:0",
                "--data-dir",
                data_dir.to_str().unwrap(),
            ])
            .args(extra)
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let mut lines = BufReader::new(stderr).lines();
        let url = loop {
            let line = lines
                .next()
                .expect("server exited before listening")
                .unwrap();
            if let Some(rest) = line.strip_prefix("Started HTTP listener at ") {
                break rest.trim().to_string();
            }
        };
        // Keep draining stderr so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Server { child, url }
    }

    fn stop(mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        for _ in 0..200 {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let _ = self.child.kill();
        panic!("server did not stop within 10 s of SIGTERM");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

#[test]
fn cli_against_a_live_server() {
    let data = tmpdir("data");
    let config = tmpdir("config");
    let server = Server::start(&data);
    // A second server on the same data directory is refused.
    let o = hangar()
        .args([
            "server",
            "--http-address",
            "127.0.0.1:0",
            "--data-dir",
            data.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(
        text(&o).1.contains("another hangar server is using"),
        "{}",
        text(&o).1
    );

    let cli = |args: &[&str]| {
        let o = hangar()
            .env("HANGAR_CONFIG_DIR", &config)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let (out, err) = text(&o);
        (o.status.code().unwrap_or(-1), out, err)
    };
    let (code, _, err) = cli(&["users", "list"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("You are not logged in. Try logging in using 'hangar login <url>'."),
        "{err}"
    );

    let (code, out, err) = cli(&["login", &server.url]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        format!("{out}{err}")
            .contains("the initial user cannot be created in non-interactive mode. use the API")
    );

    let (code, out, err) = cli(&[
        "login",
        &server.url,
        "--first-user-username",
        "admin",
        "--first-user-email",
        "admin@example.com",
        "--first-user-password",
        "SomeSecurePassword!",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let all = format!("{out}{err}");
    assert!(
        all.contains("Your Hangar deployment hasn't been set up!"),
        "{all}"
    );
    assert!(
        all.contains("Welcome to Hangar, admin! You're authenticated."),
        "{all}"
    );
    for f in ["url", "session"] {
        let meta = std::fs::metadata(config.join(f)).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{f}");
        let content = std::fs::read_to_string(config.join(f)).unwrap();
        assert!(!content.ends_with('\n'), "{f} has a trailing newline");
    }

    let (code, out, err) = cli(&[
        "users",
        "create",
        "-e",
        "bob@example.com",
        "-u",
        "bob",
        "-p",
        "SomeSecurePassword!",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(err.contains("A new user has been created!"), "{err}");
    let (code, out, _) = cli(&["users", "list"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("USERNAME") && out.contains("bob") && !out.contains("prebuilds"),
        "{out}"
    );
    let (_, out, err) = cli(&["users", "suspend", "bob"]);
    assert!(
        format!("{out}{err}").contains("User bob has been suspended!"),
        "{out}{err}"
    );
    let (_, out, err) = cli(&["users", "suspend", "bob"]);
    assert!(
        format!("{out}{err}").contains("User status is already \"suspended\""),
        "{out}{err}"
    );
    let (code, out, err) = cli(&["users", "list", "-o", "json"]);
    assert_eq!(code, 0, "{err}");
    let users: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(users.as_array().unwrap().len(), 2);

    let (code, out, err) = cli(&["orgs", "create", "acme"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("Organization acme (") && out.contains(") created."),
        "{out}"
    );
    let (code, out, err) = cli(&["orgs", "delete", "acme", "-y"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(format!("{out}{err}").contains("Organization acme has been deleted."));
    let (code, out, err) = cli(&["orgs", "delete", "default", "-y"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("Default organization cannot be deleted."),
        "{err}"
    );

    let (code, token, err) = cli(&["tokens", "create", "--name", "ci", "--lifetime", "720h"]);
    assert_eq!(code, 0, "{err}");
    let token = token.trim().to_string();
    assert_eq!(token.len(), 33, "{token}");
    let (_, out, _) = cli(&["tokens", "list"]);
    assert!(out.contains("ci"), "{out}");
    let (code, out, err) = cli(&["tokens", "remove", "ci"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(format!("{out}{err}").contains("Token has been deleted."));

    let (code, out, _) = cli(&["whoami"]);
    assert_eq!(code, 0);
    assert!(out.contains("admin"), "{out}");
    let (code, _, _) = cli(&["logout"]);
    assert_eq!(code, 0);
    assert!(!config.join("session").exists());

    let status = server.stop();
    assert!(status.success(), "server exit status {status:?}");
    std::fs::remove_dir_all(data).ok();
    std::fs::remove_dir_all(config).ok();
}

/// Runs `cmd` with stdin closed, killing it (and failing the test) after `limit`.
fn run_bounded(mut cmd: Command, limit: Duration) -> Output {
    let shown = format!("{:?}", cmd.get_args().collect::<Vec<_>>());
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            pipe.read_to_end(&mut bytes).ok();
            bytes
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            let err = String::from_utf8_lossy(&stderr.join().unwrap_or_default()).into_owned();
            panic!("hangar {shown} did not finish within {limit:?}; stderr: {err}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    }
}

/// A CLI runner on its own config dir, logged in as the first user of the server at `url`
/// (which it creates). Each call returns the exit code, stdout and stderr.
fn admin_cli<'a>(config: &'a Path, url: &str) -> impl Fn(&[&str]) -> (i32, String, String) + 'a {
    let cli = move |args: &[&str]| {
        let mut cmd = hangar();
        cmd.env("HANGAR_CONFIG_DIR", config).args(args);
        let o = run_bounded(cmd, Duration::from_secs(120));
        let (out, err) = text(&o);
        (o.status.code().unwrap_or(-1), out, err)
    };
    let (code, out, err) = cli(&[
        "login",
        url,
        "--first-user-username",
        "admin",
        "--first-user-email",
        "admin@example.com",
        "--first-user-password",
        "SomeSecurePassword!",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    cli
}

/// The echo template of 04 §11: resource `dev` (`hangar_test`), agent `main`, app `code`.
/// The agent's token is fixed so the test can act as the agent.
const ECHO_APPLY: &str = r#"{"resources":[{"name":"dev","type":"hangar_test","agents":[{"name":"main","operating_system":"linux","architecture":"amd64","token":"5f0c3a52-8d1e-4c59-9a0e-3f1f2b7c6d41","apps":[{"id":"a","slug":"code","url":"http://localhost:13337"}]}]}]}"#;
const AGENT_TOKEN: &str = "5f0c3a52-8d1e-4c59-9a0e-3f1f2b7c6d41";

/// Reports an app status as the workspace agent, through the agent API.
fn report_app_status(base: &str, state: &str, message: &str) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let status = rt.block_on(async {
        reqwest::Client::new()
            .patch(format!("{base}/api/v2/workspaceagents/me/app-status"))
            .header("Coder-Session-Token", AGENT_TOKEN)
            .json(&serde_json::json!({"app_slug": "code", "state": state, "message": message}))
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .unwrap()
            .status()
    });
    assert_eq!(status.as_u16(), 200, "app-status {state}");
}

/// The `APP STATUS` cell of `admin/dev` in `hangar list`.
fn app_status_column(list: &str) -> String {
    let header = list.lines().next().unwrap_or("");
    let start = header.find("APP STATUS").expect("APP STATUS column");
    let row = list
        .lines()
        .find(|l| l.starts_with("admin/dev "))
        .unwrap_or("");
    row.get(start..).unwrap_or("").trim().to_string()
}

/// The last non-empty line of `text`.
fn last_line(text: &str) -> &str {
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
}

/// Asserts `line` is `<prefix><RFC 3339 time>!`.
fn assert_timed_line(line: &str, prefix: &str) {
    let time = line
        .strip_prefix(prefix)
        .and_then(|rest| rest.strip_suffix('!'))
        .unwrap_or_else(|| panic!("{line:?} is not {prefix:?}<time>!"));
    assert!(
        time.len() >= 20 && time.as_bytes()[4] == b'-' && time.as_bytes()[10] == b'T',
        "{time:?} is not RFC 3339"
    );
}

#[test]
fn templates_and_workspaces_against_a_live_server() {
    let data = tmpdir("ws-data");
    let config = tmpdir("ws-config");
    let template = tmpdir("ws-template");
    std::fs::write(template.join("apply.json"), ECHO_APPLY).unwrap();
    std::fs::create_dir_all(template.join(".terraform")).unwrap();
    std::fs::write(template.join(".terraform/ignored"), "not uploaded").unwrap();
    let broken = tmpdir("ws-broken");
    std::fs::write(
        broken.join("plan.json"),
        r#"{"logs":[{"level":"error","stage":"Planning","output":"about to fail"}],"error":"boom"}"#,
    )
    .unwrap();
    let server = Server::start(&data);

    let cli = admin_cli(&config, &server.url);

    let (code, _, err) = cli(&["templates", "list"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("No templates found."), "{err}");

    let dir = template.to_str().unwrap();
    let push = [
        "templates",
        "push",
        "echo",
        "-d",
        dir,
        "--provisioner",
        "echo",
        "-y",
    ];
    let (code, out, err) = cli(&push);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("==> Done ["), "{out}");
    assert_timed_line(
        last_line(&out),
        "The \"echo\" template has been created at ",
    );
    // Pushing again makes a new version and activates it.
    let (code, out, err) = cli(&push);
    assert_eq!(code, 0, "{out}{err}");
    assert_timed_line(last_line(&out), "Updated version at ");

    let (code, out, err) = cli(&["templates", "list"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("NAME  ") && out.contains("ORGANIZATION NAME"),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("echo ") && l.ends_with("developer(s)")),
        "{out}"
    );
    let (code, out, err) = cli(&["templates", "versions", "echo"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 3, "{out}");
    assert!(out.contains("succeeded") && out.contains("Active"), "{out}");

    let (code, out, err) = cli(&[
        "templates",
        "push",
        "broken",
        "-d",
        broken.to_str().unwrap(),
        "--provisioner",
        "echo",
        "-y",
    ]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("    about to fail"), "{out}");
    let last = last_line(&err);
    assert!(
        last.starts_with("error: template import failed: ") && last.contains("boom"),
        "{err}"
    );

    let (code, out, err) = cli(&["create", "dev", "-t", "echo", "-y"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("==> Done ["), "{out}");
    assert_timed_line(last_line(&out), "The dev workspace has been created at ");

    let (code, out, err) = cli(&["list"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("WORKSPACE  TEMPLATE  STATUS   HEALTHY  LAST BUILT"),
        "{out}"
    );
    let row = out
        .lines()
        .find(|l| l.starts_with("admin/dev "))
        .unwrap_or("");
    assert!(row.contains("echo") && row.contains("running"), "{out}");
    let (code, out, err) = cli(&["list", "-o", "json"]);
    assert_eq!(code, 0, "{err}");
    let listed: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{out}");

    let (code, out, err) = cli(&["show", "dev"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().next(), Some("dev (running, build 1)"), "{out}");
    assert!(
        out.contains("hangar_test.dev") && out.contains("main"),
        "{out}"
    );
    assert!(
        out.contains("code  ") && out.contains("http://localhost:13337"),
        "{out}"
    );
    assert_eq!(last_line(&out), "Latest app status: none", "{out}");

    // Checklist 69: the agent reports statuses; the CLI shows the message, else the state.
    report_app_status(&server.url, "working", "Running tests");
    let (_, out, _) = cli(&["list"]);
    assert_eq!(app_status_column(&out), "code: Running tests", "{out}");
    report_app_status(&server.url, "idle", "");
    let (_, out, _) = cli(&["list"]);
    assert_eq!(app_status_column(&out), "code: idle", "{out}");
    let (_, out, _) = cli(&["show", "dev"]);
    assert_eq!(
        last_line(&out),
        "Latest app status: idle (idle, app code)",
        "{out}"
    );
    let (code, out, err) = cli(&["show", "admin/dev", "-o", "json"]);
    assert_eq!(code, 0, "{err}");
    let shown: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(shown["latest_build"]["build_number"], 1);

    let (code, out, err) = cli(&["stop", "dev"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_timed_line(last_line(&out), "The dev workspace has been stopped at ");
    let (_, out, _) = cli(&["show", "dev"]);
    assert_eq!(out.lines().next(), Some("dev (stopped, build 2)"), "{out}");

    // Without a terminal, deleting needs -y.
    let (code, out, err) = cli(&["delete", "dev"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("-y"), "{err}");
    let (code, out, err) = cli(&["delete", "dev", "-y"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_timed_line(last_line(&out), "The dev workspace has been deleted at ");
    let (code, out, err) = cli(&["list"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(err.contains("No workspaces found!"), "{out}{err}");

    let status = server.stop();
    assert!(status.success(), "server exit status {status:?}");
    drop(cli);
    for d in [data, config, template, broken] {
        std::fs::remove_dir_all(d).ok();
    }
}

/// `hangar server` with `extra` flags exits non-zero and says `message` on stderr.
fn refuses_to_start(data: &Path, extra: &[&str], message: &str) {
    let mut cmd = hangar();
    cmd.args([
        "server",
        "--http-address",
        "127.0.0.1:0",
        "--data-dir",
        data.to_str().unwrap(),
    ])
    .args(extra);
    let o = run_bounded(cmd, Duration::from_secs(30));
    let (_, err) = text(&o);
    assert!(!o.status.success());
    assert!(err.contains(message), "{err}");
}

/// 03 §6: `hangar oauth2 apps` and its secrets against a live server; and the startup rule
/// for an access URL with a path.
#[test]
fn oauth2_apps_cli() {
    let data = tmpdir("oauth2-data");
    let config = tmpdir("oauth2-config");
    let server = Server::start_with(&data, &["--experiments", "oauth2"]);
    let cli = admin_cli(&config, &server.url);
    let (code, _, err) = cli(&["oauth2", "apps", "list"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("No OAuth2 apps found."), "{err}");
    let (code, out, err) = cli(&[
        "oauth2",
        "apps",
        "create",
        "--name",
        "Editor",
        "--callback-url",
        "http://localhost:9876/callback",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let id = out
        .trim()
        .strip_prefix("Created OAuth2 app \"Editor\" with client ID ")
        .and_then(|s| s.strip_suffix('.'))
        .unwrap_or_else(|| panic!("{out}"))
        .to_string();
    let (_, out, _) = cli(&["oauth2", "apps", "list"]);
    assert!(
        out.starts_with("ID") && out.contains("CALLBACK URL") && out.contains("DYNAMIC"),
        "{out}"
    );
    assert!(out.contains(&id) && out.contains("false"), "{out}");
    let (code, out, err) = cli(&["oauth2", "apps", "secrets", "create", "Editor"]);
    assert_eq!(code, 0, "{out}{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("Created secret ")
            && lines[0].ends_with(". It will not be shown again:"),
        "{out}"
    );
    let secret = lines[1];
    assert!(secret.starts_with("coder_") && secret.len() == 57, "{out}");
    let secret_id = lines[0]
        .trim_start_matches("Created secret ")
        .trim_end_matches(". It will not be shown again:")
        .to_string();
    let (_, out, _) = cli(&["oauth2", "apps", "secrets", "list", &id]);
    assert!(
        out.contains(&secret[secret.len() - 6..]) && out.contains("never"),
        "{out}"
    );
    let (code, out, _) = cli(&["oauth2", "apps", "secrets", "delete", &id, &secret_id]);
    assert_eq!(
        (code, out.trim()),
        (0, format!("Deleted secret {secret_id}.").as_str())
    );
    let (code, out, _) = cli(&["oauth2", "apps", "delete", &id]);
    assert_eq!(
        (code, out.trim()),
        (0, format!("Deleted OAuth2 app {id}.").as_str())
    );
    let (_, out, _) = cli(&["oauth2", "apps", "list", "-o", "json"]);
    assert_eq!(out.trim(), "[]");
    assert!(server.stop().success());

    // An access URL with a path is refused while oauth2 is on.
    refuses_to_start(
        &data,
        &[
            "--experiments",
            "oauth2",
            "--access-url",
            "http://127.0.0.1:1/sub",
        ],
        "--access-url must not contain a path when the oauth2 experiment is enabled",
    );
    refuses_to_start(
        &data,
        &[
            "--oauth2-access-token-lifetime",
            "2h",
            "--default-oauth-refresh-lifetime",
            "1h",
        ],
        "--default-oauth-refresh-lifetime must be longer than --oauth2-access-token-lifetime",
    );
    drop(cli);
    for d in [data, config] {
        std::fs::remove_dir_all(d).ok();
    }
}
