//! `kiln serve`, `kiln token` and `kiln check-plan`: the registry for people and tools that are
//! not on the build machine.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use kiln_server::{AppState, Config, Untracked};

use crate::cli::{CheckPlanArgs, ServeArgs, TokenCommand, UntrackedMode, ValidateFormat};
use crate::commands::registry;
use crate::factory_dir;

fn untracked(m: UntrackedMode) -> Untracked {
    match m {
        UntrackedMode::Fail => Untracked::Fail,
        UntrackedMode::Warn => Untracked::Warn,
    }
}

pub fn run(factory: Option<&Path>, args: &ServeArgs) -> anyhow::Result<ExitCode> {
    let (_, f) = factory_dir::open(factory)?;
    let at = registry::location(factory)?;
    let config = Config {
        anonymous_read: args.anonymous_read,
        runtask_hmac_key: args.runtask_hmac_key.clone().filter(|k| !k.is_empty()),
        untracked: untracked(args.untracked.untracked),
        policies: Arc::new(f.policies.clone()),
    };
    let state =
        AppState::new(&at, config).with_context(|| format!("opening the registry at {at}"))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .with_context(|| format!("listening on {}", args.listen))?;
        let addr = listener.local_addr()?;
        // The one line scripts wait for; everything else goes through tracing.
        println!("kiln serve: listening on http://{addr} (registry {at})");
        if args.anonymous_read {
            println!("kiln serve: reads are open to anonymous callers");
        }
        let shutdown = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        kiln_server::serve(listener, state, shutdown)
            .await
            .context("serving")
    })?;
    Ok(ExitCode::SUCCESS)
}

/// The local CLI manages tokens as admin: whoever can write the registry file has that power.
fn local_admin(actor: Option<String>) -> anyhow::Result<kiln_registry::Actor> {
    registry::actor(&crate::cli::Who {
        actor,
        role: "admin".into(),
    })
}

pub fn token(factory: Option<&Path>, command: TokenCommand) -> anyhow::Result<ExitCode> {
    let mut r = registry::open(factory)?;
    match command {
        TokenCommand::Create {
            name,
            role,
            expires,
            actor,
        } => {
            let role = kiln_registry::Role::parse(&role).with_context(|| {
                format!("unknown role `{role}`: admin, platform, security, ci or consumer")
            })?;
            let expires_at = match expires {
                Some(age) => {
                    let d = super::cache::parse_age(&age)?;
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)?
                        .as_millis() as u64;
                    Some(kiln_registry::clock::format_millis(
                        now + d.as_millis() as u64,
                    ))
                }
                None => None,
            };
            let secret =
                r.create_token(&local_admin(actor)?, &name, role, expires_at.as_deref())?;
            // The secret alone on stdout, so `TOKEN=$(kiln token create …)` works.
            println!("{secret}");
            #[allow(clippy::print_stderr, reason = "a note beside the secret on stdout")]
            {
                eprintln!(
                    "token `{name}` ({}){}: store it now, it is not shown again",
                    role.as_str(),
                    expires_at
                        .map(|e| format!(", expires {e}"))
                        .unwrap_or_default()
                );
            }
        }
        TokenCommand::List { out } => {
            let tokens = r.tokens()?;
            if out.format == ValidateFormat::Json {
                println!("{}", serde_json::to_string_pretty(&tokens)?);
            } else {
                for t in tokens {
                    let state = match (&t.revoked_at, &t.expires_at) {
                        (Some(at), _) => format!("revoked {at}"),
                        (None, Some(e)) => format!("expires {e}"),
                        (None, None) => "no expiry".to_string(),
                    };
                    println!(
                        "{:<24} {:<9} created {} by {:<12} {state}",
                        t.name,
                        t.role.as_str(),
                        t.created_at,
                        t.created_by
                    );
                }
            }
        }
        TokenCommand::Revoke { name, actor } => {
            r.revoke_token(&local_admin(actor)?, &name)?;
            println!("token `{name}` revoked");
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn check_plan(factory: Option<&Path>, args: &CheckPlanArgs) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(&args.plan)
        .with_context(|| format!("reading {}", args.plan.display()))?;
    let plan: serde_json::Value = serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is not JSON: make it with `terraform show -json PLANFILE`",
            args.plan.display()
        )
    })?;
    if plan.get("resource_changes").is_none() && plan.get("format_version").is_none() {
        bail!(
            "{} is not a Terraform plan (no format_version or resource_changes): make it with `terraform show -json PLANFILE`",
            args.plan.display()
        );
    }
    let mut r = registry::open(factory)?;
    let check = kiln_server::plancheck::check(&mut r, &plan, untracked(args.untracked.untracked))
        .map_err(|e| anyhow::anyhow!(e.message))?;
    if args.out.format == ValidateFormat::Json {
        println!("{}", serde_json::to_string_pretty(&check)?);
    } else {
        for u in &check.usages {
            let mark = if u.verdict.fails() { "FAIL" } else { "ok  " };
            println!(
                "{mark} {} ({}) {}: {}",
                u.address, u.action, u.attribute, u.detail
            );
        }
        println!("{}", check.summary());
    }
    Ok(if check.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
