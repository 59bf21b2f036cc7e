//! The registry commands: reading versions and ancestry, moving channels, revoking, restoring,
//! verifying the audit log. The registry lives where kiln.hcl's `registry` block says.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, bail};
use kiln_registry::{Actor, Location, Registry, Role, Version};
use kiln_spec::RegistryUrl;

use super::publish::channel_map;
use crate::cli::{AuditCommand, ChannelCommand, Command, ValidateFormat, Who};
use crate::factory_dir;

/// Where the factory's registry lives: a SQLite file (relative to the factory) or PostgreSQL.
pub fn location(factory: Option<&Path>) -> anyhow::Result<Location> {
    let (dir, f) = factory_dir::open(factory)?;
    Ok(match &f.settings.registry {
        RegistryUrl::Sqlite(p) if p.is_absolute() => Location::Sqlite(p.clone()),
        RegistryUrl::Sqlite(p) => Location::Sqlite(dir.join(p)),
        RegistryUrl::Postgres(url) => Location::Postgres(url.clone()),
    })
}

pub fn open(factory: Option<&Path>) -> anyhow::Result<Registry> {
    let at = location(factory)?;
    Registry::open_at(&at).with_context(|| format!("opening the registry at {at}"))
}

pub fn actor(who: &Who) -> anyhow::Result<Actor> {
    let role = Role::parse(&who.role).with_context(|| {
        format!(
            "unknown role `{}`: admin, platform, security, ci or consumer",
            who.role
        )
    })?;
    let name = who
        .actor
        .clone()
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "root".into());
    Ok(Actor::new(name, role))
}

/// Accepts a full version id or a unique prefix of one (as shown by `kiln versions`).
pub(crate) fn resolve(reg: &mut Registry, bucket: &str, id: &str) -> anyhow::Result<String> {
    let all = reg.versions(bucket)?;
    let hits: Vec<&Version> = all
        .iter()
        .filter(|v| {
            v.id.eq_ignore_ascii_case(id) || v.id.to_lowercase().starts_with(&id.to_lowercase())
        })
        .collect();
    match hits.as_slice() {
        [v] => Ok(v.id.clone()),
        [] => bail!("bucket `{bucket}` has no version `{id}`"),
        _ => bail!(
            "`{id}` matches {} versions of `{bucket}`; give more of the id",
            hits.len()
        ),
    }
}

fn print_json(v: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

pub fn run(factory: Option<&Path>, cmd: Command) -> anyhow::Result<ExitCode> {
    match cmd {
        Command::Versions { bucket, out } => {
            let mut r = open(factory)?;
            let versions = r.versions(&bucket)?;
            let channels = r.channels(&bucket)?;
            if out.format == ValidateFormat::Json {
                print_json(&versions)?;
            } else {
                println!(
                    "{:<26}  {:<20}  {:<16}  {:<24}  CHANNELS",
                    "VERSION", "STATUS", "FINGERPRINT", "CREATED"
                );
                for v in &versions {
                    let on: Vec<&str> = channels
                        .iter()
                        .filter(|c| c.version.as_deref() == Some(v.id.as_str()))
                        .map(|c| c.name.as_str())
                        .collect();
                    println!(
                        "{:<26}  {:<20}  {:<16}  {:<24}  {}",
                        v.id,
                        v.status.as_str(),
                        &v.fingerprint[..v.fingerprint.len().min(16)],
                        v.created_at,
                        on.join(",")
                    );
                }
            }
        }
        Command::Show {
            bucket,
            version_id: version,
            out,
        } => {
            let mut r = open(factory)?;
            let id = resolve(&mut r, &bucket, &version)?;
            let v = r.version(&id)?;
            if out.format == ValidateFormat::Json {
                print_json(&v)?;
            } else {
                println!("{}/{}  {}", v.bucket, v.id, v.status.as_str());
                println!("  fingerprint  {}", v.fingerprint);
                println!("  created      {}", v.created_at);
                if let Some(c) = &v.completed_at {
                    println!("  completed    {c}");
                }
                println!(
                    "  parents      {}",
                    if v.parents.is_empty() {
                        "-".to_string()
                    } else {
                        v.parents.join(", ")
                    }
                );
                if let Some(rv) = &v.revocation {
                    println!(
                        "  revocation   {} by {} at {}{}",
                        rv.reason,
                        rv.by,
                        rv.at,
                        rv.inherited_from
                            .as_ref()
                            .map(|f| format!(" (inherited from {f})"))
                            .unwrap_or_default()
                    );
                }
                for a in &v.artifacts {
                    println!(
                        "  artifact     {}/{} {} {} {}",
                        a.platform, a.region, a.format, a.external_id, a.sha256
                    );
                }
            }
        }
        Command::Ancestry { bucket, out } => {
            let mut r = open(factory)?;
            let versions = r.versions(&bucket)?;
            let ood = r.out_of_date()?;
            let mut rows = Vec::new();
            for v in &versions {
                let children = r.children(&v.id)?;
                let stale: Vec<_> = ood.iter().filter(|o| o.child == v.id).cloned().collect();
                rows.push(serde_json::json!({"version": v.id, "status": v.status, "parents": v.parents, "children": children, "out_of_date": stale}));
            }
            if out.format == ValidateFormat::Json {
                print_json(&rows)?;
            } else {
                for row in &rows {
                    println!(
                        "{} ({})",
                        row["version"].as_str().unwrap_or(""),
                        row["status"].as_str().unwrap_or("")
                    );
                    println!("  parents:  {}", row["parents"]);
                    println!("  children: {}", row["children"]);
                    for o in row["out_of_date"].as_array().into_iter().flatten() {
                        println!(
                            "  OUT OF DATE: built on {}/{}, but {}/{} now points at {}",
                            o["parent_bucket"].as_str().unwrap_or(""),
                            o["parent"].as_str().unwrap_or(""),
                            o["parent_bucket"].as_str().unwrap_or(""),
                            o["channel"].as_str().unwrap_or(""),
                            o["now"].as_str().unwrap_or("nothing")
                        );
                    }
                }
            }
        }
        Command::Promote {
            bucket,
            version_id: version,
            channel,
            reason,
            who,
            out,
        } => {
            let (_, f) = factory_dir::open(factory)?;
            let mut r = open(factory)?;
            let id = resolve(&mut r, &bucket, &version)?;
            // The channel's policy first: refuse with every unmet rule.
            let unmet = kiln_pipeline::policy::unmet_for(&mut r, &f.policies, &id, &channel)?;
            if !unmet.is_empty() {
                bail!(
                    "{bucket}/{id} may not enter {channel}:\n  - {}",
                    unmet.join("\n  - ")
                );
            }
            let before = channel_map(&mut r)?;
            r.promote(&actor(&who)?, &bucket, &id, &channel, &reason)?;
            // The channel's accounts get the images (its SSM parameter names them), and lose
            // the version the channel named before, unless another channel still shares it.
            let synced = reconcile_moved(factory, &mut r, &before, std::slice::from_ref(&id))?;
            if out.format == ValidateFormat::Json {
                print_json(
                    &serde_json::json!({"bucket": bucket, "channel": channel, "version": id}),
                )?;
            } else {
                println!("{bucket}/{channel} → {id}");
                for line in synced {
                    println!("{line}");
                }
            }
        }
        Command::Channel {
            command:
                ChannelCommand::History {
                    bucket,
                    channel,
                    out,
                },
        } => {
            let mut r = open(factory)?;
            let h = r.history(&bucket, &channel)?;
            if out.format == ValidateFormat::Json {
                print_json(&h)?;
            } else {
                for e in &h {
                    println!(
                        "{}  {:<26} (was {:<26})  by {:<12} {}",
                        e.at,
                        e.version.as_deref().unwrap_or("-"),
                        e.previous.as_deref().unwrap_or("-"),
                        e.author,
                        e.reason
                    );
                }
            }
        }
        Command::Channel {
            command:
                ChannelCommand::Rollback {
                    bucket,
                    channel,
                    reason,
                    who,
                    out,
                },
        } => {
            let mut r = open(factory)?;
            let before = channel_map(&mut r)?;
            let to = r.rollback(&actor(&who)?, &bucket, &channel, &reason)?;
            let synced = reconcile_moved(factory, &mut r, &before, &[])?;
            if out.format == ValidateFormat::Json {
                print_json(
                    &serde_json::json!({"bucket": bucket, "channel": channel, "version": to}),
                )?;
            } else {
                println!("{bucket}/{channel} → {}", to.as_deref().unwrap_or("-"));
                for line in synced {
                    println!("{line}");
                }
            }
        }
        Command::Revoke {
            bucket,
            version_id: version,
            reason,
            at,
            skip_descendants,
            who,
            out,
        } => {
            let mut r = open(factory)?;
            let id = resolve(&mut r, &bucket, &version)?;
            let before = channel_map(&mut r)?;
            let revoked = r.revoke(&actor(&who)?, &id, &reason, at.as_deref(), skip_descendants)?;
            let synced = reconcile_moved(factory, &mut r, &before, &revoked)?;
            if out.format == ValidateFormat::Json {
                print_json(
                    &serde_json::json!({"version": id, "revoked": revoked, "scheduled_at": if revoked.is_empty() { at.clone() } else { None }}),
                )?;
            } else if revoked.is_empty() {
                println!(
                    "revocation of {id} scheduled for {}",
                    at.unwrap_or_default()
                );
            } else {
                println!(
                    "revoked {} version{}: {}",
                    revoked.len(),
                    if revoked.len() == 1 { "" } else { "s" },
                    revoked.join(", ")
                );
            }
            for line in synced {
                if out.format != ValidateFormat::Json {
                    println!("{line}");
                }
            }
        }
        Command::Restore {
            bucket,
            version_id: version,
            who,
            out,
        } => {
            let mut r = open(factory)?;
            let id = resolve(&mut r, &bucket, &version)?;
            let before = channel_map(&mut r)?;
            let restored = r.restore(&actor(&who)?, &id)?;
            let synced = reconcile_moved(factory, &mut r, &before, &restored)?;
            if out.format == ValidateFormat::Json {
                print_json(&serde_json::json!({"restored": restored}))?;
            } else {
                println!("restored {}", restored.join(", "));
            }
            for line in synced {
                if out.format != ValidateFormat::Json {
                    println!("{line}");
                }
            }
        }
        Command::Approve {
            bucket,
            version_id: version,
            who,
        } => {
            let mut r = open(factory)?;
            let id = resolve(&mut r, &bucket, &version)?;
            let a = actor(&who)?;
            r.approve(&a, &id)?;
            println!("{bucket}/{id} approved by {} ({})", a.name, a.role.as_str());
        }
        Command::Audit {
            command: AuditCommand::Verify,
        } => {
            let mut r = open(factory)?;
            match r.verify_audit() {
                Ok(n) => println!("audit log intact: {n} entries"),
                Err(e) => {
                    #[allow(clippy::print_stderr)]
                    {
                        eprintln!("error: {e}");
                    }
                    return Ok(ExitCode::from(1));
                }
            }
        }
        _ => unreachable!("dispatched in commands::run"),
    }
    Ok(ExitCode::SUCCESS)
}

/// Brings the clouds in line after a registry change: `changed` plus every version that joined
/// or left a channel since `before` (a revocation moves channels back to older versions, a
/// promotion pushes one off).
fn reconcile_moved(
    factory: Option<&Path>,
    r: &mut Registry,
    before: &super::publish::Channels,
    changed: &[String],
) -> anyhow::Result<Vec<String>> {
    let mut touched = changed.to_vec();
    for v in super::publish::moved(before, &channel_map(r)?) {
        if !touched.contains(&v) {
            touched.push(v);
        }
    }
    super::publish::reconcile_after(factory, &touched)
}
