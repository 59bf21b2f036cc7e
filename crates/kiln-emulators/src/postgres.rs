//! A throwaway PostgreSQL server from Debian's packages: `initdb` and `pg_ctl` in a temp dir,
//! on a loopback port, trusted local connections, C locale. It is never a system service.
//!
//! `initdb` refuses to run as root, so the cluster belongs to the `postgres` user. A watcher in
//! its own session stops the server and removes the dir once the test process is gone, however
//! it ended (a panic, a SIGKILL, Ctrl-C), so no server outlives its tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::free_port;

const HINT: &str = "run scripts/host-deps.sh postgres";

#[derive(Debug)]
pub struct Postgres {
    dir: PathBuf,
    bin: PathBuf,
    pub port: u16,
    /// Stop on drop (servers from [`Postgres::start`]; the shared one lives as long as the process).
    owned: bool,
}

/// The newest PostgreSQL installed under /usr/lib/postgresql.
fn bin_dir() -> PathBuf {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .unwrap_or_else(|e| panic!("/usr/lib/postgresql: {e} ({HINT})"))
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse().ok()?;
            Some((v, e.path().join("bin")))
        })
        .filter(|(_, b)| b.join("initdb").exists())
        .collect();
    versions.sort();
    versions
        .pop()
        .unwrap_or_else(|| panic!("no initdb under /usr/lib/postgresql ({HINT})"))
        .1
}

fn as_postgres(bin: &Path, tool: &str, args: &[&str]) -> Command {
    let mut c = Command::new("runuser");
    c.args(["-u", "postgres", "--"])
        .arg(bin.join(tool))
        .args(args);
    c
}

fn run(mut c: Command, what: &str) {
    let out = c
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{what}: {e} ({HINT})"));
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Postgres {
    /// A server of the test's own, stopped when dropped.
    pub fn start() -> Postgres {
        let mut p = Postgres::launch();
        p.owned = true;
        p
    }

    /// One server for the whole test process (tests take a database each, see
    /// [`Postgres::fresh_database`]); started on first use, stopped after the process exits.
    pub fn shared() -> &'static Postgres {
        static SHARED: OnceLock<Postgres> = OnceLock::new();
        SHARED.get_or_init(Postgres::launch)
    }

    fn launch() -> Postgres {
        static N: AtomicU32 = AtomicU32::new(0);
        let bin = bin_dir();
        let dir = std::env::temp_dir().join(format!(
            "kiln-pg-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("creating the PostgreSQL dir");
        run(
            {
                let mut c = Command::new("chown");
                c.arg("postgres:postgres").arg(&dir);
                c
            },
            "chown postgres",
        );
        let data = dir.join("data");
        let data = data.to_str().expect("utf-8 temp dir");
        run(
            as_postgres(
                &bin,
                "initdb",
                &[
                    "-D",
                    data,
                    "-A",
                    "trust",
                    "-U",
                    "postgres",
                    "--no-locale",
                    "-E",
                    "UTF8",
                    "--no-sync",
                ],
            ),
            "initdb",
        );
        let port = free_port();
        let opts = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c max_connections=200",
            dir.display()
        );
        let log = dir.join("log");
        run(
            as_postgres(
                &bin,
                "pg_ctl",
                &[
                    "-D",
                    data,
                    "-o",
                    &opts,
                    "-l",
                    log.to_str().expect("utf-8"),
                    "-w",
                    "start",
                ],
            ),
            "pg_ctl start",
        );
        // The watcher: in a session of its own so Ctrl-C on the tests does not kill it first.
        let watch = format!(
            "while [ -d /proc/{pid} ]; do sleep 0.5; done; runuser -u postgres -- {ctl} -D {data} -m immediate stop >/dev/null 2>&1; rm -rf {dir}",
            pid = std::process::id(),
            ctl = bin.join("pg_ctl").display(),
            dir = dir.display(),
        );
        // `setsid -f` forks it off and returns at once, so nothing is left to wait for.
        let started = Command::new("setsid")
            .args(["-f", "sh", "-c", &watch])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("starting the PostgreSQL watcher");
        assert!(started.success(), "setsid: {started}");
        Postgres {
            dir,
            bin,
            port,
            owned: false,
        }
    }

    /// The url of database `db` on this server.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// A new, empty database; its url.
    pub fn fresh_database(&self) -> String {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!("kiln_{}", N.fetch_add(1, Ordering::SeqCst));
        self.sql("postgres", &format!("CREATE DATABASE {name}"));
        self.url(&name)
    }

    /// Runs SQL with psql as the superuser; its output, unaligned.
    pub fn sql(&self, db: &str, sql: &str) -> String {
        let out = Command::new(self.bin.join("psql"))
            .args([
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
            ])
            .args([
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-d",
                db,
                "-c",
                sql,
            ])
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("psql: {e} ({HINT})"));
        assert!(
            out.status.success(),
            "psql {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Stops the server now (fast shutdown: open sessions are ended).
    pub fn stop(&self) {
        let data = self.dir.join("data");
        let _ = as_postgres(
            &self.bin,
            "pg_ctl",
            &[
                "-D",
                data.to_str().expect("utf-8"),
                "-m",
                "fast",
                "-w",
                "stop",
            ],
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if self.owned {
            self.stop();
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
