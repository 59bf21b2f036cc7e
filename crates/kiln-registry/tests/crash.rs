//! Crash safety: a child process makes acknowledged writes (it prints each version id only after
//! the commit returned) and is killed with SIGKILL at random moments, 200 times (`KILN_CRASH_KILLS`
//! raises it for `make stress`), on SQLite and on PostgreSQL. After every kill the database opens
//! (SQLite's file passes `PRAGMA integrity_check`), its audit chain verifies, and every
//! acknowledged write is there.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kiln_registry::*;
use serde_json::json;

mod support;
use support::Backend;

const CHILD_ENV: &str = "KILN_CRASH_CHILD_DB";

/// The child's side: writes until killed. Does nothing unless started by the harness.
#[test]
fn crash_child_writer() {
    let Ok(at) = std::env::var(CHILD_ENV) else {
        return;
    };
    let mut r = Registry::open_at(&support::location(&at)).unwrap();
    let actor = Actor::new("writer", Role::Admin);
    r.ensure_bucket(&actor, "base").unwrap();
    loop {
        let v = r
            .start_version(&actor, "base", "fp", &[], json!({"n": 1}))
            .unwrap();
        r.complete(&actor, &v).unwrap();
        r.promote(&actor, "base", &v, "dev", "crash test").unwrap();
        println!("ACK {v}");
    }
}

both_backends!(sigkill_at_random_moments_loses_no_acknowledged_write);

fn sigkill_at_random_moments_loses_no_acknowledged_write(b: Backend) {
    let kills: usize = std::env::var("KILN_CRASH_KILLS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    let db = b.fresh();
    let exe = std::env::current_exe().unwrap();
    let mut acknowledged: Vec<String> = Vec::new();
    let mut seed: u64 = 0x5eed_1234_abcd;
    for round in 0..kills {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let run_for = Duration::from_millis(5 + seed % 120);
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "crash_child_writer",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, db.arg())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(std::result::Result::ok)
                .filter_map(|l| l.strip_prefix("ACK ").map(str::to_string))
                .collect::<Vec<_>>()
        });
        let start = Instant::now();
        while start.elapsed() < run_for {
            std::thread::sleep(Duration::from_millis(1));
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        acknowledged.extend(reader.join().unwrap());

        let mut r = Registry::open_at(&db.at)
            .unwrap_or_else(|e| panic!("round {round}: cannot open after kill: {e}"));
        if let Location::Sqlite(path) = &db.at {
            let check: String = rusqlite::Connection::open(path)
                .unwrap()
                .query_row("PRAGMA integrity_check", [], |row| row.get(0))
                .unwrap();
            assert_eq!(check, "ok", "round {round}");
        }
        r.verify_audit()
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
        if round % 20 == 0 || round + 1 == kills {
            let present: std::collections::HashSet<String> = r
                .versions("base")
                .unwrap()
                .into_iter()
                .map(|v| v.id)
                .collect();
            for id in &acknowledged {
                assert!(
                    present.contains(id),
                    "round {round}: acknowledged version {id} is missing"
                );
            }
        }
    }
    assert!(
        acknowledged.len() > kills / 2,
        "the writer barely wrote: {} acknowledged",
        acknowledged.len()
    );
}
