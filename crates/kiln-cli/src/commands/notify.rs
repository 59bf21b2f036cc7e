//! Webhook notifications from the command line: delivering after a registry change, and the
//! `kiln notify` commands (status, deliver, retry).

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use kiln_publish::notify;

use crate::cli::{NotifyCommand, ValidateFormat};
use crate::commands::registry;
use crate::factory_dir;

/// How long a short command (promote, revoke, …) waits for its events to be delivered. The
/// change is committed before; what is not delivered by then stays queued for the next run.
pub const AFTER_CHANGE: Duration = Duration::from_secs(5);

/// Delivers pending events after a registry change. Problems are reported, never fatal: the
/// change itself is already committed.
pub fn after_change(factory: Option<&Path>) {
    let Ok((_, f)) = factory_dir::open(factory) else {
        return;
    };
    if f.settings.webhooks.is_empty() {
        return;
    }
    let result = registry::open(factory).and_then(|mut reg| {
        Ok(notify::deliver(
            &mut reg,
            f.settings.name.as_str(),
            &f.settings.webhooks,
            Instant::now() + AFTER_CHANGE,
        )?)
    });
    match result {
        Ok(s) if s.pending > 0 || s.failed > 0 => tracing::warn!(
            "webhooks: {} delivered, {} attempt(s) failed, {} pending; see `kiln notify status`",
            s.delivered,
            s.failed,
            s.pending
        ),
        Ok(_) => {}
        Err(e) => tracing::warn!("webhooks: {e:#}"),
    }
}

pub fn run(factory: Option<&Path>, cmd: NotifyCommand) -> anyhow::Result<ExitCode> {
    let (_, f) = factory_dir::open(factory)?;
    let mut reg = registry::open(factory)?;
    match cmd {
        NotifyCommand::Status { out } => {
            let (open, done) = reg.outbox_undelivered()?;
            if out.format == ValidateFormat::Json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(
                        &serde_json::json!({"delivered": done.iter().map(|(t, n)| serde_json::json!({"target": t, "count": n})).collect::<Vec<_>>(), "undelivered": open})
                    )?
                );
                return Ok(ExitCode::SUCCESS);
            }
            if f.settings.webhooks.is_empty() {
                println!(
                    "no webhooks are configured (notify \"webhook\" \"NAME\" blocks in kiln.hcl)"
                );
            }
            for h in &f.settings.webhooks {
                let n = done
                    .iter()
                    .find(|(t, _)| *t == h.name)
                    .map_or(0, |(_, n)| *n);
                let pending = open
                    .iter()
                    .filter(|d| d.target == h.name && d.status == "pending")
                    .count();
                let dead = open
                    .iter()
                    .filter(|d| d.target == h.name && d.status == "dead")
                    .count();
                println!(
                    "{:<16} {:<40} delivered {n}, pending {pending}, dead {dead}",
                    h.name, h.url
                );
            }
            for d in &open {
                println!(
                    "  {:<8} {:<20} {:<18} attempts {}  next {}  {}",
                    d.status,
                    d.id(),
                    d.event,
                    d.attempts,
                    d.next_at,
                    d.last_error.as_deref().unwrap_or("")
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        NotifyCommand::Deliver { wait_secs } => {
            let s = notify::deliver(
                &mut reg,
                f.settings.name.as_str(),
                &f.settings.webhooks,
                Instant::now() + Duration::from_secs(wait_secs),
            )?;
            println!(
                "delivered {}, failed attempts {}, still pending {}",
                s.delivered, s.failed, s.pending
            );
            Ok(if s.pending == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        NotifyCommand::Retry { target } => {
            let n = reg.outbox_retry_dead(target.as_deref())?;
            println!(
                "{n} dead deliver{} queued again",
                if n == 1 { "y" } else { "ies" }
            );
            after_change(factory);
            Ok(ExitCode::SUCCESS)
        }
    }
}
