//! Registry behaviour as its users rely on it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use kiln_registry::*;
use serde_json::json;

fn admin() -> Actor {
    Actor::new("alice", Role::Admin)
}
fn security() -> Actor {
    Actor::new("sam", Role::Security)
}
fn platform() -> Actor {
    Actor::new("pat", Role::Platform)
}

struct Fixture {
    _dir: tempfile::TempDir,
    reg: Registry,
    clock: Arc<AtomicU64>,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(AtomicU64::new(1_795_000_000_000));
    let c = clock.clone();
    let reg = Registry::open_with_clock(
        &dir.path().join("registry.db"),
        Arc::new(move || c.fetch_add(1, Ordering::SeqCst)),
    )
    .unwrap();
    Fixture {
        _dir: dir,
        reg,
        clock,
    }
}

fn active(reg: &mut Registry, bucket: &str, parents: &[String]) -> String {
    let v = reg
        .start_version(
            &admin(),
            bucket,
            "fp",
            parents,
            json!({"parent_channel": "production"}),
        )
        .unwrap();
    reg.add_artifact(
        &admin(),
        &v,
        &Artifact {
            platform: "file".into(),
            region: "local".into(),
            external_id: format!("/store/{v}/disk.raw"),
            format: "raw".into(),
            size: 1,
            sha256: "00".into(),
        },
    )
    .unwrap();
    reg.complete(&admin(), &v).unwrap();
    v
}

#[test]
fn promotion_rules_channels_and_latest() {
    let mut f = fixture();
    let r = &mut f.reg;
    r.create_bucket(&admin(), "base", "hardened base").unwrap();
    let v1 = active(r, "base", &[]);
    assert_eq!(r.channel("base", LATEST).unwrap(), Some(v1.clone()));
    let running = r
        .start_version(&admin(), "base", "fp2", &[], json!({}))
        .unwrap();
    assert!(
        r.promote(&platform(), "base", &running, "dev", "try")
            .is_err(),
        "running versions cannot be promoted"
    );
    r.fail(&admin(), &running, "tests failed").unwrap();
    assert!(
        r.promote(&platform(), "base", &running, "dev", "try")
            .is_err(),
        "failed versions cannot be promoted"
    );
    assert!(
        r.promote(&platform(), "base", &v1, LATEST, "x").is_err(),
        "latest is managed"
    );
    r.promote(&platform(), "base", &v1, "production", "first")
        .unwrap();
    let v2 = active(r, "base", &[]);
    assert_eq!(r.channel("base", LATEST).unwrap(), Some(v2.clone()));
    r.promote(&platform(), "base", &v2, "production", "second")
        .unwrap();
    assert_eq!(
        r.rollback(&platform(), "base", "production", "bad")
            .unwrap(),
        Some(v1.clone())
    );
    let h = r.history("base", "production").unwrap();
    assert_eq!(h.len(), 3);
    assert_eq!(h[2].previous.as_deref(), Some(v2.as_str()));
    assert_eq!(h[2].author, "pat");

    // Restricted channels need the security role.
    r.set_restricted(&security(), "base", "production", true)
        .unwrap();
    let err = r
        .promote(&platform(), "base", &v2, "production", "again")
        .unwrap_err();
    assert!(matches!(err, RegistryError::Forbidden { .. }), "{err}");
    r.promote(&security(), "base", &v2, "production", "approved")
        .unwrap();
    assert!(r.set_restricted(&platform(), "base", "dev", true).is_err());
    assert!(r.verify_audit().unwrap() > 10);
}

#[test]
fn revocation_reaches_descendants_rolls_channels_back_and_restore_undoes_it() {
    let mut f = fixture();
    let r = &mut f.reg;
    r.create_bucket(&admin(), "base", "").unwrap();
    r.create_bucket(&admin(), "web", "").unwrap();
    let b1 = active(r, "base", &[]);
    r.promote(&platform(), "base", &b1, "production", "")
        .unwrap();
    let b2 = active(r, "base", &[]);
    r.promote(&platform(), "base", &b2, "production", "")
        .unwrap();
    let w1 = active(r, "web", std::slice::from_ref(&b2));
    r.promote(&platform(), "web", &w1, "production", "")
        .unwrap();
    let w0 = active(r, "web", std::slice::from_ref(&b1));

    assert!(
        r.revoke(&platform(), &b2, "CVE", None, false).is_err(),
        "platform cannot revoke"
    );
    let mut revoked = r
        .revoke(&security(), &b2, "CVE-2026-0001", None, false)
        .unwrap();
    revoked.sort();
    let mut want = vec![b2.clone(), w1.clone()];
    want.sort();
    assert_eq!(revoked, want);
    assert_eq!(r.version(&w1).unwrap().status, Status::Revoked);
    assert_eq!(
        r.version(&w1)
            .unwrap()
            .revocation
            .unwrap()
            .inherited_from
            .as_deref(),
        Some(b2.as_str())
    );
    assert_eq!(
        r.channel("base", "production").unwrap(),
        Some(b1.clone()),
        "rolled back to the previous good one"
    );
    assert_eq!(
        r.channel("web", "production").unwrap(),
        None,
        "nothing earlier: empty"
    );
    assert_eq!(r.channel("base", LATEST).unwrap(), Some(b1.clone()));
    assert_eq!(r.channel("web", LATEST).unwrap(), Some(w0.clone()));
    assert!(
        r.promote(&security(), "base", &b2, "dev", "").is_err(),
        "revoked versions cannot be promoted"
    );

    assert!(
        r.restore(&security(), &w1).is_err(),
        "inherited revocations are restored through their origin"
    );
    let restored = r.restore(&security(), &b2).unwrap();
    assert_eq!(restored.len(), 2);
    assert_eq!(r.version(&b2).unwrap().status, Status::Active);
    assert_eq!(r.version(&w1).unwrap().status, Status::Active);
    assert!(r.version(&w1).unwrap().revocation.is_none());
    assert_eq!(r.channel("base", LATEST).unwrap(), Some(b2.clone()));
    assert_eq!(r.verify_audit().unwrap(), r.verify_audit().unwrap());
}

#[test]
fn scheduled_revocations_take_effect_on_time() {
    let mut f = fixture();
    let r = &mut f.reg;
    r.create_bucket(&admin(), "base", "").unwrap();
    let b1 = active(r, "base", &[]);
    let b2 = active(r, "base", &[]);
    r.promote(&platform(), "base", &b1, "production", "")
        .unwrap();
    r.promote(&platform(), "base", &b2, "production", "")
        .unwrap();
    let now = f.clock.load(Ordering::SeqCst);
    let at = kiln_registry::clock::format_millis(now + 60_000);
    let revoked_now = r
        .revoke(&security(), &b2, "end of support", Some(&at), false)
        .unwrap();
    assert!(revoked_now.is_empty());
    assert_eq!(r.version(&b2).unwrap().status, Status::RevocationScheduled);
    assert_eq!(r.channel("base", "production").unwrap(), Some(b2.clone()));
    f.clock.store(now + 61_000, Ordering::SeqCst);
    // Any read applies it; so does the tick.
    assert_eq!(r.version(&b2).unwrap().status, Status::Revoked);
    assert_eq!(r.channel("base", "production").unwrap(), Some(b1.clone()));
    assert_eq!(r.tick().unwrap(), 0, "already applied");
}

#[test]
fn out_of_date_children_are_found() {
    let mut f = fixture();
    let r = &mut f.reg;
    r.create_bucket(&admin(), "base", "").unwrap();
    r.create_bucket(&admin(), "web", "").unwrap();
    let b1 = active(r, "base", &[]);
    r.promote(&platform(), "base", &b1, "production", "")
        .unwrap();
    let w1 = active(r, "web", std::slice::from_ref(&b1));
    assert!(r.out_of_date().unwrap().is_empty());
    let b2 = active(r, "base", &[]);
    r.promote(&platform(), "base", &b2, "production", "")
        .unwrap();
    let ood = r.out_of_date().unwrap();
    assert_eq!(ood.len(), 1);
    assert_eq!(
        (
            ood[0].child.as_str(),
            ood[0].parent.as_str(),
            ood[0].now.as_deref()
        ),
        (w1.as_str(), b1.as_str(), Some(b2.as_str()))
    );
}

#[test]
fn editing_deleting_or_reordering_audit_rows_is_detected_and_named() {
    let mut f = fixture();
    f.reg.create_bucket(&admin(), "base", "").unwrap();
    let v = active(&mut f.reg, "base", &[]);
    f.reg
        .promote(&platform(), "base", &v, "production", "ship it")
        .unwrap();
    let n = f.reg.verify_audit().unwrap();
    assert!(n >= 5);
    let conn = f.reg.connection();

    conn.execute("UPDATE audit SET actor = 'mallory' WHERE seq = 3", [])
        .unwrap();
    let err = f.reg.verify_audit().unwrap_err().to_string();
    assert!(
        err.contains("audit log broken at entry 3") && err.contains("was edited"),
        "{err}"
    );
    conn.execute("UPDATE audit SET actor = 'alice' WHERE seq = 3", [])
        .unwrap();
    f.reg.verify_audit().unwrap();

    conn.execute("DELETE FROM audit WHERE seq = 2", []).unwrap();
    let err = f.reg.verify_audit().unwrap_err().to_string();
    assert!(
        err.contains("entry 3") && err.contains("deleted or reordered"),
        "{err}"
    );
}

#[test]
fn deleting_the_newest_audit_entry_is_detected() {
    let mut f = fixture();
    f.reg.create_bucket(&admin(), "base", "").unwrap();
    let _ = active(&mut f.reg, "base", &[]);
    let n = f.reg.verify_audit().unwrap() as i64;
    f.reg
        .connection()
        .execute("DELETE FROM audit WHERE seq = ?1", [n])
        .unwrap();
    let err = f.reg.verify_audit().unwrap_err().to_string();
    assert!(err.contains("entries at the end were deleted"), "{err}");
}

#[test]
fn migrations_are_versioned_and_reopen_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("r.db");
    {
        let mut r = Registry::open(&p).unwrap();
        r.create_bucket(&admin(), "base", "").unwrap();
    }
    let mut r = Registry::open(&p).unwrap();
    // Every migration ran, once: the approvals table exists and the version is the newest.
    let tables: i64 = r
        .connection()
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'approvals'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(tables, 1);
    assert_eq!(
        kiln_registry::db::schema_version(r.connection()).unwrap(),
        5
    );
    assert_eq!(r.buckets().unwrap(), ["base"]);

    // A registry written at schema 2 (before retention) upgrades in place, its versions intact.
    let old = dir.path().join("old.db");
    {
        let c = rusqlite::Connection::open(&old).unwrap();
        c.execute_batch(include_str!("../src/schema.sql")).unwrap();
        c.execute_batch(include_str!("../src/schema_2.sql"))
            .unwrap();
        c.execute_batch(
            "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL);
             INSERT INTO schema_migrations VALUES (1, 'x'), (2, 'x');
             INSERT INTO buckets (name, created_at) VALUES ('base', '2026-01-01T00:00:00.000Z');
             INSERT INTO versions (id, bucket, fingerprint, status, ordinal, created_at, completed_at)
               VALUES ('01OLD', 'base', 'fp', 'active', 1, '2026-01-01T00:00:00.000Z', '2026-01-01T00:01:00.000Z');",
        )
        .unwrap();
    }
    let mut upgraded = Registry::open(&old).unwrap();
    assert_eq!(
        kiln_registry::db::schema_version(upgraded.connection()).unwrap(),
        5
    );
    assert_eq!(upgraded.version("01OLD").unwrap().status, Status::Active);
    r.connection()
        .execute(
            "INSERT INTO schema_migrations (version, applied_at) VALUES (99, 'x')",
            [],
        )
        .unwrap();
    drop(r);
    let err = Registry::open(&p).unwrap_err();
    assert!(
        matches!(err, RegistryError::SchemaTooNew { found: 99, .. }),
        "{err}"
    );
}
