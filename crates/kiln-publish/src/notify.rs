//! Webhook notifications. Events come from the registry's audit log (see
//! `kiln_registry::outbox`): a version created, completed, failed, promoted, revoked, restored,
//! or made out of date by its parent's channel moving. Each event is a JSON document POSTed to
//! every webhook that subscribes to it, with
//! - `X-Kiln-Event: version.completed`, `X-Kiln-Delivery: ID` (stable across retries: dedupe on it),
//! - `X-Kiln-Signature-256: sha256=HEX`, the HMAC-SHA256 of the body with the secret read from
//!   the environment variable the webhook's `secret_env` names (the secret is never stored).
//!
//! A failed delivery is retried with exponential backoff (0.5 s doubling, up to 10 min) and
//! given up after [`MAX_ATTEMPTS`]; `kiln notify status` shows what is pending or dead.

use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use kiln_registry::audit::AuditEntry;
use kiln_registry::{Delivery, NewDelivery, Registry, RegistryError};
use kiln_spec::Webhook;
use serde::Serialize;
use serde_json::{Value, json};

pub const MAX_ATTEMPTS: i64 = 8;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// What one delivery round did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub delivered: usize,
    /// Attempts that failed in this round (each will be retried or is dead).
    pub failed: usize,
    /// Deliveries still waiting for a retry when the round ended.
    pub pending: usize,
}

/// The events an audit entry stands for: `(type, bucket, version, data)`.
pub fn events_of(e: &AuditEntry) -> Vec<(String, String, String, Value)> {
    let detail: Value = serde_json::from_str(&e.detail).unwrap_or_default();
    let (bucket, name) = e.subject.split_once('/').unwrap_or((&e.subject, ""));
    let one =
        |t: &str, data: Value| vec![(t.to_string(), bucket.to_string(), name.to_string(), data)];
    match e.action.as_str() {
        "version.start" => one("version.created", detail),
        "version.complete" => one("version.completed", detail),
        "version.fail" => one("version.failed", detail),
        "version.revoke" | "version.revoke.effective" | "version.revoke.inherited" => one(
            "version.revoked",
            json!({"effective": true, "detail": detail}),
        ),
        "version.revoke.schedule" => one(
            "version.revoked",
            json!({"effective": false, "detail": detail}),
        ),
        "version.restore" => one("version.restored", detail),
        "channel.assign" => {
            let channel = name;
            let mut out = Vec::new();
            if let Some(v) = detail["version"].as_str()
                && channel != "latest"
            {
                out.push((
                    "version.promoted".to_string(),
                    bucket.to_string(),
                    v.to_string(),
                    json!({"channel": channel, "previous": detail["previous"], "reason": detail["reason"]}),
                ));
            }
            for o in detail["outdated"].as_array().into_iter().flatten() {
                out.push((
                    "version.outdated".to_string(),
                    o["bucket"].as_str().unwrap_or_default().to_string(),
                    o["version"].as_str().unwrap_or_default().to_string(),
                    json!({"parent_bucket": bucket, "channel": channel, "parent_now": detail["version"], "built_on": detail["previous"]}),
                ));
            }
            out
        }
        _ => Vec::new(),
    }
}

/// `sha256=HEX` of the body under the secret.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    // HMAC accepts keys of any length; new_from_slice cannot fail for it.
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(body);
    let bytes = mac.finalize().into_bytes();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

/// Turns new audit entries into delivery rows for `hook`.
pub fn enqueue(reg: &mut Registry, factory: &str, hook: &Webhook) -> Result<usize, RegistryError> {
    let mut queued = 0;
    loop {
        let from = reg.outbox_cursor(&hook.name)?;
        let entries = reg.audit_after(from, 500)?;
        let Some(last) = entries.last().map(|e| e.seq) else {
            return Ok(queued);
        };
        let mut new = Vec::new();
        for e in &entries {
            for (idx, (kind, bucket, version, data)) in events_of(e).into_iter().enumerate() {
                if !hook.events.contains(&kind) {
                    continue;
                }
                let id = format!("{}-{}-{idx}", hook.name, e.seq);
                let payload = json!({
                    "id": id,
                    "type": kind,
                    "factory": factory,
                    "at": e.at,
                    "actor": e.actor,
                    "bucket": bucket,
                    "version": version,
                    "data": data,
                    "audit": {"seq": e.seq, "hash": e.hash},
                });
                new.push(NewDelivery {
                    seq: e.seq,
                    idx: idx as i64,
                    event: kind,
                    payload: payload.to_string(),
                });
            }
        }
        if reg.outbox_enqueue(&hook.name, from, last, &new)? {
            queued += new.len();
        }
    }
}

/// Backoff before attempt `attempts + 1`.
pub fn backoff(attempts: i64) -> Duration {
    let ms = 500u64.saturating_mul(1u64 << attempts.clamp(0, 20));
    Duration::from_millis(ms.min(600_000))
}

fn post(hook: &Webhook, d: &Delivery) -> Result<(), String> {
    let mut req = ureq::AgentBuilder::new()
        .timeout(REQUEST_TIMEOUT)
        .build()
        .post(&hook.url)
        .set("Content-Type", "application/json")
        .set("User-Agent", concat!("kiln/", env!("CARGO_PKG_VERSION")))
        .set("X-Kiln-Event", &d.event)
        .set("X-Kiln-Delivery", &d.id());
    if let Some(var) = &hook.secret_env {
        let secret = std::env::var(var).map_err(|_| {
            format!("the signing secret variable {var} is not set; not sending unsigned")
        })?;
        req = req.set(
            "X-Kiln-Signature-256",
            &signature(secret.as_bytes(), d.payload.as_bytes()),
        );
    }
    match req.send_bytes(d.payload.as_bytes()) {
        Ok(_) => Ok(()),
        Err(ureq::Error::Status(code, resp)) => {
            let body = resp.into_string().unwrap_or_default();
            Err(format!(
                "HTTP {code}: {}",
                body.chars().take(200).collect::<String>()
            ))
        }
        Err(e) => Err(e.to_string()),
    }
}

/// Enqueues new events and delivers what is due to every webhook, retrying failures (with
/// their backoff) until everything is delivered or `deadline` passes. Never fails because a
/// receiver did: that is recorded on the delivery.
pub fn deliver(
    reg: &mut Registry,
    factory: &str,
    hooks: &[Webhook],
    deadline: Instant,
) -> Result<Summary, RegistryError> {
    let mut s = Summary::default();
    for hook in hooks {
        enqueue(reg, factory, hook)?;
    }
    loop {
        let mut did = false;
        for hook in hooks {
            for d in reg.outbox_due(&hook.name, 100)? {
                did = true;
                let result = post(hook, &d);
                let retry_at = match &result {
                    Err(e) if d.attempts + 1 < MAX_ATTEMPTS => {
                        tracing::warn!(webhook = %hook.name, event = %d.event, attempt = d.attempts + 1, "delivery failed: {e}");
                        let at = now_ms() + backoff(d.attempts).as_millis() as u64;
                        Some(kiln_registry::clock::format_millis(at))
                    }
                    _ => None,
                };
                match &result {
                    Ok(()) => s.delivered += 1,
                    Err(_) => s.failed += 1,
                }
                reg.outbox_record(&d, result, retry_at)?;
            }
        }
        if did {
            continue;
        }
        // Nothing due now: wait for the earliest retry if it comes before the deadline.
        let mut next: Option<u64> = None;
        for hook in hooks {
            if let Some(at) = reg
                .outbox_next_due(&hook.name)?
                .and_then(|t| kiln_registry::clock::parse_millis(&t))
            {
                next = Some(next.map_or(at, |n| n.min(at)));
            }
        }
        let Some(at) = next else {
            break;
        };
        let wait = Duration::from_millis(at.saturating_sub(now_ms()));
        if Instant::now() + wait > deadline {
            break;
        }
        std::thread::sleep(wait);
    }
    let (open, _) = reg.outbox_undelivered()?;
    s.pending = open.iter().filter(|d| d.status == "pending").count();
    Ok(s)
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Delivers in a thread of its own, with its own registry connection, while a long command
/// (a build) runs: events reach receivers as they happen and a slow receiver never holds up the
/// build. [`Background::finish`] gives the last events a bounded grace period.
#[derive(Debug)]
pub struct Background {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Background {
    /// `None` when the factory has no webhooks.
    pub fn start(
        registry: kiln_registry::Location,
        factory: String,
        hooks: Vec<Webhook>,
        grace: Duration,
    ) -> Option<Self> {
        if hooks.is_empty() {
            return None;
        }
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut reg = match Registry::open_at(&registry) {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!("notifications: cannot open the registry at {registry}: {e}");
                    return;
                }
            };
            loop {
                let last = flag.load(std::sync::atomic::Ordering::SeqCst);
                let deadline = Instant::now() + if last { grace } else { Duration::ZERO };
                if let Err(e) = deliver(&mut reg, &factory, &hooks, deadline) {
                    tracing::warn!("notifications: {e}");
                }
                if last {
                    return;
                }
                for _ in 0..10 {
                    if flag.load(std::sync::atomic::Ordering::SeqCst) {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        });
        Some(Background {
            stop,
            thread: Some(thread),
        })
    }

    /// Delivers what is left (retrying within the grace period) and stops.
    pub fn finish(mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_rfc_4231_case_2() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        assert_eq!(backoff(0), Duration::from_millis(500));
        assert_eq!(backoff(3), Duration::from_secs(4));
        assert_eq!(backoff(40), Duration::from_secs(600));
    }

    #[test]
    fn a_promotion_is_one_promoted_event_and_one_outdated_event_per_child() {
        let e = AuditEntry {
            seq: 7,
            at: "2026-11-23T10:00:00.000Z".into(),
            actor: "pat".into(),
            action: "channel.assign".into(),
            subject: "base/dev".into(),
            detail: json!({"version": "V2", "previous": "V1", "reason": "r", "outdated": [{"bucket": "app", "version": "A1"}]}).to_string(),
            prev_hash: String::new(),
            hash: "h".into(),
        };
        let ev = events_of(&e);
        assert_eq!(ev.len(), 2);
        assert_eq!(
            (ev[0].0.as_str(), ev[0].1.as_str(), ev[0].2.as_str()),
            ("version.promoted", "base", "V2")
        );
        assert_eq!(
            (ev[1].0.as_str(), ev[1].1.as_str(), ev[1].2.as_str()),
            ("version.outdated", "app", "A1")
        );
        assert_eq!(ev[1].3["parent_now"], "V2");
    }
}
