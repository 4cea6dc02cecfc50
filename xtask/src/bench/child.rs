//! Servers under test run as child processes: the load generator then never shares a
//! runtime with them, both servers of a comparison start the same way, and memory can be
//! read from `/proc/<pid>/status` of a real `hangar server`.

use anyhow::{Context, bail};
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The line both servers print once they accept connections.
const LISTENING: &str = "Started HTTP listener at http://";

/// A running server; killed when dropped so a failed benchmark leaves nothing behind.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
}

impl Server {
    /// Starts `cmd`, copies its stderr to `log`, and waits for the listener line.
    pub async fn start(mut cmd: Command, log: &Path) -> anyhow::Result<Server> {
        // The child must not pick up a developer's HANGAR_DATABASE_URL and the like.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("HANGAR_") {
                cmd.env_remove(key);
            }
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .with_context(|| format!("start {:?}", cmd.get_program()))?;
        let stderr = child.stderr.take().context("child stderr")?;
        let mut file =
            std::fs::File::create(log).with_context(|| format!("create {}", log.display()))?;
        let (tx, rx) = tokio::sync::oneshot::channel::<SocketAddr>();
        // A thread, not a task: it blocks on the pipe for the child's whole life, and keeps
        // draining it so a chatty server never stalls on a full pipe.
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let _ = writeln!(file, "{line}");
                if let Some(addr) = line
                    .split_once(LISTENING)
                    .and_then(|(_, rest)| rest.trim().parse().ok())
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(addr);
                }
            }
        });
        let mut server = Server {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        };
        match tokio::time::timeout(Duration::from_secs(60), rx).await {
            Ok(Ok(addr)) => server.addr = addr,
            Ok(Err(_)) => bail!(
                "server exited before listening; see {}:\n{}",
                log.display(),
                tail(log)
            ),
            Err(_) => bail!(
                "server did not start listening within 60 s; see {}",
                log.display()
            ),
        }
        Ok(server)
    }

    /// `VmRSS` and `VmHWM` (peak) of the process in KiB, from `/proc/<pid>/status`.
    pub fn memory_kib(&self) -> anyhow::Result<(u64, u64)> {
        let path = format!("/proc/{}/status", self.child.id());
        let status = std::fs::read_to_string(&path)
            .with_context(|| format!("read {path} (memory figures need Linux)"))?;
        let field = |name: &str| -> anyhow::Result<u64> {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                .with_context(|| format!("no {name} in {path}"))
        };
        Ok((field("VmRSS:")?, field("VmHWM:")?))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}
