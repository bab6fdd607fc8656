//! Running `bluepods-node` processes: start with logs to a file, learn their
//! bound addresses from the log, stop them gracefully or not. Used by the
//! demo and by the end-to-end tests; every process started here is stopped
//! when its handle is dropped.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The `bluepods-node` binary next to the running executable (or its parent
/// directory, for test binaries under `deps/`).
pub fn node_binary() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut dir = exe.parent().map(Path::to_path_buf);
    while let Some(d) = dir {
        let candidate = d.join("bluepods-node");
        if candidate.is_file() {
            return Ok(candidate);
        }
        dir = d.parent().map(Path::to_path_buf);
        if dir.as_ref().is_some_and(|p| p.ends_with("target")) {
            break;
        }
    }
    Err("bluepods-node binary not found next to this executable; build it with `cargo build --bins`".into())
}

/// A running node process.
pub struct NodeProcess {
    /// A name for messages.
    pub name: String,
    child: Option<Child>,
    /// Its log file.
    pub log: PathBuf,
    /// Its data directory.
    pub data: PathBuf,
    /// The QUIC address it advertises.
    pub quic: String,
    /// The HTTP API address, if it has one.
    pub http: Option<String>,
}

impl NodeProcess {
    /// Starts `bluepods-node` with `args` plus `--data data`, logging to
    /// `data.log` and printing to `data.out`, without waiting for anything.
    pub fn spawn(name: &str, data: &Path, args: &[&str]) -> Result<Self, String> {
        let log = data.with_extension("log");
        let file = std::fs::File::create(&log)
            .map_err(|e| format!("cannot create {}: {e}", log.display()))?;
        let out_path = data.with_extension("out");
        let out = std::fs::File::create(&out_path)
            .map_err(|e| format!("cannot create {}: {e}", out_path.display()))?;
        let child = Command::new(node_binary()?)
            .args(args)
            .arg("--data")
            .arg(data)
            .env(
                "RUST_LOG",
                std::env::var("BLUEPODS_TEST_LOG")
                    .unwrap_or_else(|_| "info,quinn=warn,fjall=warn,lsm_tree=warn".into()),
            )
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(file)
            .spawn()
            .map_err(|e| format!("cannot start bluepods-node: {e}"))?;
        Ok(NodeProcess {
            name: name.to_string(),
            child: Some(child),
            log,
            data: data.to_path_buf(),
            quic: String::new(),
            http: None,
        })
    }

    /// Starts `bluepods-node` with `args` plus `--data data`, logging to
    /// `data.log`, and waits until it reports its addresses.
    pub fn start(name: &str, data: &Path, args: &[&str], wants_http: bool) -> Result<Self, String> {
        let mut p = Self::spawn(name, data, args)?;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let text = p.log_text();
            if let Some(addr) = after(&text, "(advertised as ", ")") {
                p.quic = addr;
            }
            p.http = after(&text, "[HTTP] API listening on http://", "\n");
            if !p.quic.is_empty() && (p.http.is_some() || !wants_http) {
                return Ok(p);
            }
            if let Some(status) = p.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                return Err(format!(
                    "{name} exited early ({status}):\n{}",
                    tail(&text, 20)
                ));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "{name} did not start in time:\n{}",
                    tail(&text, 20)
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts a bootstrap validator in `dir/name` on free loopback ports.
    pub fn bootstrap(dir: &Path, name: &str) -> Result<Self, String> {
        Self::bootstrap_with(dir, name, &[])
    }

    /// Like [`NodeProcess::bootstrap`], with more flags.
    pub fn bootstrap_with(dir: &Path, name: &str, extra: &[&str]) -> Result<Self, String> {
        let mut args = vec![
            "--bootstrap",
            "--quic",
            "127.0.0.1:0",
            "--http",
            "127.0.0.1:0",
        ];
        args.extend_from_slice(extra);
        Self::start(name, &dir.join(name), &args, true)
    }

    /// Starts a listener in `dir/name` joining through `via`, with an HTTP API
    /// on a free loopback port.
    pub fn listener(dir: &Path, name: &str, via: &str) -> Result<Self, String> {
        let args = [
            "--listener",
            "--bootstrap-addr",
            via,
            "--http",
            "127.0.0.1:0",
        ];
        Self::start(name, &dir.join(name), &args, true)
    }

    /// Starts a node in `dir/name` joining through `via` on free loopback
    /// ports, with an HTTP API: a validator (it syncs, registers, then
    /// produces) unless `extra` says `--listener`.
    pub fn joiner(dir: &Path, name: &str, via: &str, extra: &[&str]) -> Result<Self, String> {
        let mut args = vec![
            "--bootstrap-addr",
            via,
            "--quic",
            "127.0.0.1:0",
            "--http",
            "127.0.0.1:0",
        ];
        args.extend_from_slice(extra);
        Self::start(name, &dir.join(name), &args, true)
    }

    /// Rounds of the vertices this node's log says it produced.
    pub fn produced_rounds(&self) -> Vec<u64> {
        logged_vertices(&self.log_text(), "[VALIDATOR] produced vertex")
            .into_iter()
            .map(|(r, _)| r)
            .collect()
    }

    /// `bluepods-node --dump-state` on this node's data directory (the node
    /// must be stopped).
    pub fn dump_state(&self) -> Result<String, String> {
        let out = Command::new(node_binary()?)
            .arg("--dump-state")
            .arg("--data")
            .arg(&self.data)
            .output()
            .map_err(|e| format!("cannot run --dump-state: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "--dump-state failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        String::from_utf8(out.stdout).map_err(|e| e.to_string())
    }

    /// What the process printed on stdout so far.
    pub fn stdout_text(&self) -> String {
        std::fs::read_to_string(self.data.with_extension("out")).unwrap_or_default()
    }

    /// Waits up to `limit` for the process to exit by itself; its exit code,
    /// or `None` if it is still running (it is then left running).
    pub fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let deadline = Instant::now() + limit;
        let child = self.child.as_mut()?;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Some(status.code().unwrap_or(-1));
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The whole log so far.
    pub fn log_text(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = std::fs::File::open(&self.log) {
            let _ = f.read_to_string(&mut s);
        }
        s
    }

    /// The HTTP address (panics if the node has none).
    pub fn http(&self) -> &str {
        self.http.as_deref().expect("node started with an HTTP API")
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// SIGTERM, then SIGKILL if it has not exited within `grace`.
    pub fn stop(&mut self, grace: Duration) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// SIGKILL at once (a crash).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(5));
    }
}

/// The text between `start` and the next `end` after the last `start`.
fn after(text: &str, start: &str, end: &str) -> Option<String> {
    let i = text.rfind(start)? + start.len();
    let rest = &text[i..];
    let j = rest.find(end)?;
    Some(rest[..j].trim().to_string())
}

/// The last `n` lines of `text`.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// `(round, hash)` of every vertex a log line reports with `marker`
/// (`"[VALIDATOR] produced vertex"` or `"[LISTENER] received vertex"`).
pub fn logged_vertices(log: &str, marker: &str) -> Vec<(u64, String)> {
    log.lines()
        .filter(|l| l.contains(marker))
        .filter_map(|l| {
            let round = after(l, "round=", " ")?.parse().ok()?;
            let hash = l.rsplit("hash=").next()?.trim().to_string();
            Some((round, hash))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vertex_lines_parse() {
        let log = "x INFO [LISTENER] received vertex round=12 txs=3 hash=abcdef0123456789\nother\n";
        assert_eq!(
            logged_vertices(log, "[LISTENER] received vertex"),
            vec![(12, "abcdef0123456789".to_string())]
        );
        assert_eq!(
            after("a (advertised as 1.2.3.4:5)\n", "(advertised as ", ")"),
            Some("1.2.3.4:5".into())
        );
    }
}
