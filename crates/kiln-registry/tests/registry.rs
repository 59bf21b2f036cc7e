//! Registry behaviour as its users rely on it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use kiln_registry::*;
use serde_json::json;

mod support;
use support::Backend;

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
    _db: support::Db,
    reg: Registry,
    clock: Arc<AtomicU64>,
}

fn fixture(b: Backend) -> Fixture {
    let db = b.fresh();
    let clock = Arc::new(AtomicU64::new(1_795_000_000_000));
    let c = clock.clone();
    let reg = db.open_with_clock(Arc::new(move || c.fetch_add(1, Ordering::SeqCst)));
    Fixture {
        _db: db,
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

fn promotion_rules_channels_and_latest(b: Backend) {
    let mut f = fixture(b);
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

fn revocation_reaches_descendants_rolls_channels_back_and_restore_undoes_it(b: Backend) {
    let mut f = fixture(b);
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

fn scheduled_revocations_take_effect_on_time(b: Backend) {
    let mut f = fixture(b);
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

fn out_of_date_children_are_found(b: Backend) {
    let mut f = fixture(b);
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

fn editing_deleting_or_reordering_audit_rows_is_detected_and_named(b: Backend) {
    let mut f = fixture(b);
    f.reg.create_bucket(&admin(), "base", "").unwrap();
    let v = active(&mut f.reg, "base", &[]);
    f.reg
        .promote(&platform(), "base", &v, "production", "ship it")
        .unwrap();
    let n = f.reg.verify_audit().unwrap();
    assert!(n >= 5);
    f.reg
        .execute_unchecked("UPDATE audit SET actor = 'mallory' WHERE seq = 3")
        .unwrap();
    let err = f.reg.verify_audit().unwrap_err().to_string();
    assert!(
        err.contains("audit log broken at entry 3") && err.contains("was edited"),
        "{err}"
    );
    f.reg
        .execute_unchecked("UPDATE audit SET actor = 'alice' WHERE seq = 3")
        .unwrap();
    f.reg.verify_audit().unwrap();

    f.reg
        .execute_unchecked("DELETE FROM audit WHERE seq = 2")
        .unwrap();
    let err = f.reg.verify_audit().unwrap_err().to_string();
    assert!(
        err.contains("entry 3") && err.contains("deleted or reordered"),
        "{err}"
    );
}

fn deleting_the_newest_audit_entry_is_detected(b: Backend) {
    let mut f = fixture(b);
    f.reg.create_bucket(&admin(), "base", "").unwrap();
    let _ = active(&mut f.reg, "base", &[]);
    let n = f.reg.verify_audit().unwrap() as i64;
    f.reg
        .execute_unchecked(&format!("DELETE FROM audit WHERE seq = {n}"))
        .unwrap();
    let err = f.reg.verify_audit().unwrap_err().to_string();
    assert!(err.contains("entries at the end were deleted"), "{err}");
}

fn migrations_are_versioned_and_reopen_cleanly(b: Backend) {
    let db = b.fresh();
    {
        let mut r = db.open();
        r.create_bucket(&admin(), "base", "").unwrap();
    }
    // Reopening runs no migration twice; two processes opening an empty database at once
    // migrate it once.
    let both: Vec<Registry> = std::thread::scope(|s| {
        let a = s.spawn(|| db.open());
        let b = s.spawn(|| db.open());
        vec![a.join().unwrap(), b.join().unwrap()]
    });
    drop(both);
    let mut r = db.open();
    assert_eq!(r.schema_version().unwrap(), db::SCHEMA_VERSION);
    assert_eq!(r.buckets().unwrap(), ["base"]);
    r.execute_unchecked("INSERT INTO schema_migrations (version, applied_at) VALUES (99, 'x')")
        .unwrap();
    drop(r);
    let err = Registry::open_at(&db.at).unwrap_err();
    assert!(
        matches!(err, RegistryError::SchemaTooNew { found: 99, .. }),
        "{err}"
    );
}

#[test]
fn a_sqlite_registry_written_at_schema_2_upgrades_in_place() {
    let dir = tempfile::tempdir().unwrap();
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
    assert_eq!(upgraded.schema_version().unwrap(), db::SCHEMA_VERSION);
    assert_eq!(upgraded.version("01OLD").unwrap().status, Status::Active);
    upgraded
        .approve(&Actor::new("sam", Role::Security), "01OLD")
        .unwrap();
    assert_eq!(upgraded.approval_roles("01OLD").unwrap(), ["security"]);
}

both_backends!(
    promotion_rules_channels_and_latest,
    revocation_reaches_descendants_rolls_channels_back_and_restore_undoes_it,
    scheduled_revocations_take_effect_on_time,
    out_of_date_children_are_found,
    editing_deleting_or_reordering_audit_rows_is_detected_and_named,
    deleting_the_newest_audit_entry_is_detected,
    migrations_are_versioned_and_reopen_cleanly
);
