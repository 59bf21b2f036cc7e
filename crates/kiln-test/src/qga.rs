//! A QEMU guest agent client over the virtio-serial unix socket.
//!
//! The handshake follows what works in practice: every attempt opens a fresh connection and sends
//! `guest-sync-delimited` with a new id; the agent answers with a 0xFF sentinel and the id. Re-sending
//! on one connection before the agent runs only fills the socket buffer with commands the agent
//! will answer later, out of order; stale answers are skipped by id.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};

use crate::error::TestError;

#[derive(Debug)]
pub struct Agent {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

/// A command to run in the guest.
#[derive(Debug, Clone)]
pub struct ExecRequest {
    pub path: String,
    pub args: Vec<String>,
    /// How long it may run before it counts as failed (it is left running in the guest).
    pub timeout: Duration,
}

/// What a command printed and how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    pub exit_code: i64,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

fn agent_err(msg: impl Into<String>) -> TestError {
    TestError::Agent(msg.into())
}

impl Agent {
    /// One handshake attempt; `Ok(None)` if the agent did not answer within `wait`.
    pub fn try_connect(socket: &Path, wait: Duration) -> Result<Option<Agent>, TestError> {
        let Ok(stream) = UnixStream::connect(socket) else {
            return Ok(None);
        };
        stream
            .set_read_timeout(Some(wait))
            .map_err(TestError::io("configuring the agent socket"))?;
        let writer = stream
            .try_clone()
            .map_err(TestError::io("cloning the agent socket"))?;
        let mut agent = Agent {
            reader: BufReader::new(stream),
            writer,
        };
        let id = sync_id();
        let msg = json!({"execute": "guest-sync-delimited", "arguments": {"id": id}});
        if agent.send(&msg).is_err() {
            return Ok(None);
        }
        let deadline = Instant::now() + wait;
        // Skip to the sentinel, then read answers until ours.
        let mut byte = [0u8; 1];
        loop {
            match agent.reader.read(&mut byte) {
                Ok(1) if byte[0] == 0xFF => break,
                Ok(1) => continue,
                _ => return Ok(None),
            }
        }
        while Instant::now() < deadline {
            let Ok(v) = agent.read_value() else {
                return Ok(None);
            };
            if v["return"].as_u64() == Some(id) {
                return Ok(Some(agent));
            }
        }
        Ok(None)
    }

    fn send(&mut self, v: &Value) -> Result<(), TestError> {
        let mut line = serde_json::to_vec(v).unwrap_or_default();
        line.push(b'\n');
        self.writer
            .write_all(&line)
            .map_err(TestError::io("writing to the guest agent"))
    }

    fn read_value(&mut self) -> Result<Value, TestError> {
        loop {
            let mut raw = Vec::new();
            let n = self
                .reader
                .read_until(b'\n', &mut raw)
                .map_err(TestError::io("reading from the guest agent"))?;
            if n == 0 {
                return Err(agent_err("the agent closed the connection"));
            }
            // Answers to sync requests carry a 0xFF sentinel (not UTF-8): drop it.
            raw.retain(|&b| b != 0xFF);
            let text = String::from_utf8_lossy(&raw);
            let t = text.trim();
            if t.is_empty() {
                continue;
            }
            return serde_json::from_str(t)
                .map_err(|e| agent_err(format!("unreadable answer {t:?}: {e}")));
        }
    }

    /// Sends a command and returns its `return` value.
    pub fn call(&mut self, execute: &str, arguments: Value) -> Result<Value, TestError> {
        self.send(&json!({"execute": execute, "arguments": arguments}))?;
        let v = self.read_value()?;
        if let Some(e) = v.get("error") {
            return Err(agent_err(format!(
                "{execute}: {}",
                e["desc"].as_str().unwrap_or("error")
            )));
        }
        Ok(v["return"].clone())
    }

    /// Runs a program in the guest and waits for it, up to `timeout`.
    pub fn exec(
        &mut self,
        path: &str,
        args: &[&str],
        timeout: Duration,
    ) -> Result<ExecOutput, TestError> {
        let req = ExecRequest {
            path: path.to_string(),
            args: args.iter().map(|a| (*a).to_string()).collect(),
            timeout,
        };
        let mut out = self.exec_many(std::slice::from_ref(&req), 1);
        out.pop()
            .map(|(r, _)| r)
            .unwrap_or_else(|| Err(agent_err("no answer")))
    }

    /// Runs `requests` with at most `in_flight` of them running in the guest at once, and
    /// returns each one's outcome and seconds in the order given. Under TCG most of a small
    /// command's time is the agent round trip and process start, so overlapping them cuts a
    /// check pack's wall time several-fold; a bound keeps a slow guest from being swamped.
    pub fn exec_many(
        &mut self,
        requests: &[ExecRequest],
        in_flight: usize,
    ) -> Vec<(Result<ExecOutput, TestError>, f64)> {
        struct Running {
            index: usize,
            pid: i64,
            started: Instant,
        }
        let mut done: Vec<Option<(Result<ExecOutput, TestError>, f64)>> =
            requests.iter().map(|_| None).collect();
        let mut running: Vec<Running> = Vec::new();
        let mut next = 0;
        let mut pause = Duration::from_millis(10);
        while next < requests.len() || !running.is_empty() {
            while next < requests.len() && running.len() < in_flight.max(1) {
                let req = &requests[next];
                let started = Instant::now();
                match self.spawn(&req.path, &req.args) {
                    Ok(pid) => running.push(Running {
                        index: next,
                        pid,
                        started,
                    }),
                    Err(e) => done[next] = Some((Err(e), started.elapsed().as_secs_f64())),
                }
                next += 1;
            }
            let mut progressed = false;
            let mut still = Vec::with_capacity(running.len());
            for r in running {
                let req = &requests[r.index];
                let secs = r.started.elapsed().as_secs_f64();
                match self.status(r.pid) {
                    Ok(Some(out)) => done[r.index] = Some((Ok(out), secs)),
                    Err(e) => done[r.index] = Some((Err(e), secs)),
                    Ok(None) if r.started.elapsed() >= req.timeout => {
                        done[r.index] = Some((
                            Err(agent_err(format!(
                                "`{} {}` did not finish within {}s",
                                req.path,
                                req.args.join(" "),
                                req.timeout.as_secs()
                            ))),
                            secs,
                        ));
                    }
                    Ok(None) => {
                        still.push(r);
                        continue;
                    }
                }
                progressed = true;
            }
            running = still;
            if progressed {
                pause = Duration::from_millis(10);
            } else if !running.is_empty() {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(200));
            }
        }
        done.into_iter()
            .map(|d| d.unwrap_or_else(|| (Err(agent_err("no answer")), 0.0)))
            .collect()
    }

    /// Starts a command in the guest and returns its pid.
    fn spawn(&mut self, path: &str, args: &[String]) -> Result<i64, TestError> {
        let r = self.call(
            "guest-exec",
            json!({"path": path, "arg": args, "capture-output": true}),
        )?;
        r["pid"]
            .as_i64()
            .ok_or_else(|| agent_err(format!("guest-exec returned no pid: {r}")))
    }

    /// The outcome of a command started with [`Agent::spawn`], once it has exited.
    fn status(&mut self, pid: i64) -> Result<Option<ExecOutput>, TestError> {
        let st = self.call("guest-exec-status", json!({"pid": pid}))?;
        if st["exited"].as_bool() != Some(true) {
            return Ok(None);
        }
        Ok(Some(ExecOutput {
            exit_code: st["exitcode"].as_i64().unwrap_or(-1),
            stdout: decode(&st["out-data"]),
            stderr: decode(&st["err-data"]),
        }))
    }

    /// Asks the guest to power off (the agent does not answer this one).
    pub fn shutdown(&mut self) -> Result<(), TestError> {
        self.send(&json!({"execute": "guest-shutdown", "arguments": {"mode": "powerdown"}}))
    }
}

fn decode(v: &Value) -> Vec<u8> {
    v.as_str()
        .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
        .unwrap_or_default()
}

/// A fresh id per attempt, so an answer to an earlier attempt is never taken for this one.
fn sync_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    (t ^ (u64::from(std::process::id()) << 32)).wrapping_add(N.fetch_add(1, Ordering::Relaxed))
        % (1 << 52)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    /// A recorded exchange with qemu-ga 7.2 (a guest-exec of `uname -r`), replayed by a fake agent
    /// that also first answers a stale sync id, as a real agent does after earlier attempts.
    #[test]
    fn handshake_skips_stale_answers_and_exec_decodes_output() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("qga.sock");
        let listener = UnixListener::bind(&sock).unwrap();
        let server = std::thread::spawn(move || {
            let (s, _) = listener.accept().unwrap();
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut w = s;
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            let req: Value = serde_json::from_str(&line).unwrap();
            assert_eq!(req["execute"], "guest-sync-delimited");
            let id = req["arguments"]["id"].as_u64().unwrap();
            w.write_all(b"\xff{\"return\": 12345}\n").unwrap();
            w.write_all(b"\xff").unwrap();
            w.write_all(format!("{{\"return\": {id}}}\n").as_bytes())
                .unwrap();
            line.clear();
            r.read_line(&mut line).unwrap();
            assert!(line.contains("guest-exec"));
            w.write_all(b"{\"return\": {\"pid\": 1021}}\n").unwrap();
            line.clear();
            r.read_line(&mut line).unwrap();
            assert!(line.contains("\"pid\":1021"));
            w.write_all(b"{\"return\": {\"exitcode\": 0, \"out-data\": \"Ni4xLjAtNTYtY2xvdWQtYW1kNjQK\", \"exited\": true}}\n").unwrap();
        });
        let mut agent = Agent::try_connect(&sock, Duration::from_secs(5))
            .unwrap()
            .expect("handshake");
        let out = agent
            .exec("/bin/uname", &["-r"], Duration::from_secs(5))
            .unwrap();
        assert_eq!(out.exit_code, 0);
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "6.1.0-56-cloud-amd64\n"
        );
        server.join().unwrap();
    }

    /// Replays frames as qemu-ga sends them after a handshake; `script` pairs the request it
    /// must receive (a substring) with the raw answer.
    fn fake_agent(
        script: Vec<(&'static str, &'static [u8])>,
    ) -> (tempfile::TempDir, std::thread::JoinHandle<()>) {
        let dir = tempfile::tempdir().unwrap();
        let listener = UnixListener::bind(dir.path().join("qga.sock")).unwrap();
        let h = std::thread::spawn(move || {
            let (s, _) = listener.accept().unwrap();
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut w = s;
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            let id = serde_json::from_str::<Value>(&line).unwrap()["arguments"]["id"]
                .as_u64()
                .unwrap();
            // Noise before the sentinel (a half-read earlier answer) must be skipped.
            w.write_all(b"\x7f").unwrap();
            w.write_all(b"\xff").unwrap();
            w.write_all(format!("{{\"return\": {id}}}\n").as_bytes())
                .unwrap();
            for (want, answer) in script {
                line.clear();
                r.read_line(&mut line).unwrap();
                assert!(line.contains(want), "expected {want} in {line}");
                w.write_all(answer).unwrap();
            }
        });
        (dir, h)
    }

    #[test]
    fn failing_commands_return_status_and_stderr() {
        let (dir, h) = fake_agent(vec![
            ("guest-exec", b"{\"return\": {\"pid\": 77}}\n"),
            ("guest-exec-status", b"{\"return\": {\"exited\": false}}\n"),
            ("guest-exec-status", b"{\"return\": {\"exitcode\": 2, \"err-data\": \"Z3JlcDogL2V0Yy94OiBObyBzdWNoIGZpbGUK\", \"exited\": true}}\n"),
        ]);
        let mut a = Agent::try_connect(&dir.path().join("qga.sock"), Duration::from_secs(5))
            .unwrap()
            .unwrap();
        let out = a
            .exec("/bin/grep", &["x", "/etc/x"], Duration::from_secs(5))
            .unwrap();
        assert_eq!(out.exit_code, 2);
        assert!(out.stdout.is_empty());
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            "grep: /etc/x: No such file\n"
        );
        h.join().unwrap();
    }

    #[test]
    fn agent_errors_are_reported_with_their_description() {
        let (dir, h) = fake_agent(vec![(
            "guest-exec",
            b"{\"error\": {\"class\": \"GenericError\", \"desc\": \"Guest agent command failed, error was 'Failed to execute child process \\u201c/nope\\u201d (No such file or directory)'\"}}\n",
        )]);
        let mut a = Agent::try_connect(&dir.path().join("qga.sock"), Duration::from_secs(5))
            .unwrap()
            .unwrap();
        let err = a
            .exec("/nope", &[], Duration::from_secs(5))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("guest-exec: Guest agent command failed"),
            "{err}"
        );
        assert!(err.contains("No such file or directory"), "{err}");
        h.join().unwrap();
    }

    #[test]
    fn no_agent_is_not_an_error_but_no_answer() {
        let dir = tempfile::tempdir().unwrap();
        let r = Agent::try_connect(&dir.path().join("missing.sock"), Duration::from_millis(100))
            .unwrap();
        assert!(r.is_none());
    }
}
