//! `kiln.hcl`: factory settings, upstream sources and channel policies.
//!
//! Parsed on its own (without the images) so that `kiln plan --since` can read an older revision
//! of this one file and compare sources.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::hcl::{self, BodyReader, Cx};
use crate::model::{
    FindingSeverity, Policy, RegistryUrl, Retention, Role, Settings, Source, SourceId, SourceKind,
    StoreUrl, Webhook,
};
use crate::names::{ChannelName, FactoryName};

/// What kiln.hcl declares. Parts with errors are left out; the errors are in the [`Cx`].
#[derive(Debug, Clone, Default)]
pub struct FactoryFile {
    pub settings: Option<Settings>,
    pub sources: BTreeMap<SourceId, Source>,
    pub policies: BTreeMap<ChannelName, Policy>,
}

pub(crate) fn read(cx: &mut Cx) -> FactoryFile {
    let mut out = FactoryFile::default();
    let Some(body) = hcl::parse_body(cx) else {
        return out;
    };
    let mut top = BodyReader::new("kiln.hcl", &body, None);

    let factories = top.blocks("factory");
    if factories.is_empty() {
        let loc = cx.src.start();
        cx.error_at(
            loc,
            "kiln.hcl has no `factory` block: add `factory { name = \"…\" channels = [\"dev\", \"production\"] }`",
        );
    }
    for extra in factories.iter().skip(1) {
        cx.error(
            hcl_edit::Span::span(&extra.ident),
            "only one `factory` block is allowed",
        );
    }
    let (name, channels) = factories
        .first()
        .map(|b| read_factory_block(cx, b))
        .unwrap_or((None, None));

    let registry = single_url_block(
        cx,
        &mut top,
        "registry",
        ".kiln/registry.db",
        parse_registry,
    );
    let store = single_url_block(cx, &mut top, "store", ".kiln/artifacts", parse_store);

    for b in top.blocks("source") {
        if let Some(src) = read_source(cx, b) {
            if let Some(prev) = out.sources.get(&src.id) {
                let line = prev.loc.line;
                cx.error_at(
                    src.loc.clone(),
                    format!("source `{}` is already declared on line {line}", src.id),
                );
            } else {
                out.sources.insert(src.id.clone(), src);
            }
        }
    }

    let retention_blocks = top.blocks("retention");
    for extra in retention_blocks.iter().skip(1) {
        cx.error(
            hcl_edit::Span::span(&extra.ident),
            "only one `retention` block is allowed",
        );
    }
    let retention = match retention_blocks.first() {
        Some(b) => read_retention(cx, b),
        None => Some(Retention::default()),
    };

    let mut webhooks: Vec<Webhook> = Vec::new();
    for b in top.blocks("notify") {
        if let Some(w) = read_webhook(cx, b) {
            if webhooks.iter().any(|x| x.name == w.name) {
                cx.error(
                    hcl_edit::Span::span(&b.ident),
                    format!("webhook `{}` is declared twice", w.name),
                );
            } else {
                webhooks.push(w);
            }
        }
    }

    let mut publish: Vec<crate::model::PublishTarget> = Vec::new();
    for b in top.blocks("publish") {
        if let Some(t) = crate::publish::read(cx, b, channels.as_deref()) {
            if publish.iter().any(|x| x.cloud == t.cloud) {
                cx.error(
                    hcl_edit::Span::span(&b.ident),
                    format!("publish \"{}\" is declared twice", t.cloud),
                );
            } else {
                publish.push(t);
            }
        }
    }

    for b in top.blocks("policy") {
        if let Some(p) = read_policy(cx, b, channels.as_deref()) {
            if out.policies.contains_key(&p.channel) {
                cx.error(
                    hcl_edit::Span::span(&b.ident),
                    format!("policy for channel `{}` is declared twice", p.channel),
                );
            } else {
                out.policies.insert(p.channel.clone(), p);
            }
        }
    }
    top.finish(cx);

    if let (Some(name), Some(channels), Some(registry), Some(store), Some(retention)) =
        (name, channels, registry, store, retention)
    {
        out.settings = Some(Settings {
            name,
            channels,
            registry,
            store,
            retention,
            webhooks,
            publish,
        });
    }
    out
}

fn read_factory_block(
    cx: &mut Cx,
    b: &hcl_edit::structure::Block,
) -> (Option<FactoryName>, Option<Vec<ChannelName>>) {
    hcl::labels(cx, b, &[]);
    let mut r = BodyReader::for_block("the factory block", b);
    let name = r.required(cx, "name").and_then(|a| {
        let s = hcl::string(cx, &a.value, "`name`")?;
        FactoryName::new(&s.value)
            .map_err(|e| cx.error_at(s.loc.clone(), e.to_string()))
            .ok()
    });
    let channels = r.required(cx, "channels").and_then(|a| {
        let list = hcl::string_list(cx, &a.value, "`channels`")?;
        if list.is_empty() {
            cx.error(
                hcl_edit::Span::span(&a.value),
                "`channels` needs at least one channel",
            );
            return None;
        }
        let mut out: Vec<ChannelName> = Vec::new();
        let mut ok = true;
        for s in list {
            match ChannelName::new(&s.value) {
                Ok(c) if out.contains(&c) => {
                    cx.error_at(s.loc, format!("channel `{c}` is listed twice"));
                    ok = false;
                }
                Ok(c) => out.push(c),
                Err(e) => {
                    cx.error_at(s.loc, e.to_string());
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    });
    r.finish(cx);
    (name, channels)
}

fn single_url_block<T>(
    cx: &mut Cx,
    top: &mut BodyReader<'_>,
    kind: &'static str,
    default_path: &str,
    parse: fn(&str) -> Result<T, String>,
) -> Option<T> {
    let blocks = top.blocks(kind);
    for extra in blocks.iter().skip(1) {
        cx.error(
            hcl_edit::Span::span(&extra.ident),
            format!("only one `{kind}` block is allowed"),
        );
    }
    let Some(b) = blocks.first() else {
        return parse(&format!("{}://{default_path}", default_scheme(kind))).ok();
    };
    hcl::labels(cx, b, &[]);
    let mut r = BodyReader::for_block(format!("the {kind} block"), b);
    let value = r.required(cx, "url").and_then(|a| {
        let s = hcl::string(cx, &a.value, "`url`")?;
        parse(&s.value).map_err(|e| cx.error_at(s.loc, e)).ok()
    });
    r.finish(cx);
    value
}

fn default_scheme(kind: &str) -> &'static str {
    if kind == "registry" { "sqlite" } else { "file" }
}

fn parse_registry(url: &str) -> Result<RegistryUrl, String> {
    if let Some(p) = url.strip_prefix("sqlite://") {
        if p.is_empty() {
            return Err(
                "`sqlite://` needs a database path, e.g. \"sqlite://.kiln/registry.db\"".into(),
            );
        }
        return Ok(RegistryUrl::Sqlite(PathBuf::from(p)));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(RegistryUrl::Postgres(url.to_string()));
    }
    Err(format!(
        "unsupported registry url `{url}`: expected sqlite://PATH or postgres://…"
    ))
}

fn parse_store(url: &str) -> Result<StoreUrl, String> {
    if let Some(p) = url.strip_prefix("file://") {
        if p.is_empty() {
            return Err("`file://` needs a directory, e.g. \"file://.kiln/artifacts\"".into());
        }
        return Ok(StoreUrl::File {
            path: PathBuf::from(p),
        });
    }
    if let Some(rest) = url.strip_prefix("s3://") {
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let ok = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
        if !ok {
            return Err(format!("invalid S3 bucket name `{bucket}` in store url"));
        }
        return Ok(StoreUrl::S3 {
            bucket: bucket.to_string(),
            prefix: prefix.trim_matches('/').to_string(),
        });
    }
    Err(format!(
        "unsupported store url `{url}`: expected file://DIR or s3://BUCKET/PREFIX"
    ))
}

fn read_source(cx: &mut Cx, b: &hcl_edit::structure::Block) -> Option<Source> {
    let labels = hcl::labels(cx, b, &["type", "name"]);
    let mut r = BodyReader::for_block("the source block", b);
    let suite = r
        .required(cx, "suite")
        .and_then(|a| hcl::string(cx, &a.value, "`suite`"));
    let components = match r.attr(cx, "components") {
        Some(a) => hcl::string_list(cx, &a.value, "`components`")
            .map(|l| l.into_iter().map(|s| s.value).collect::<Vec<_>>()),
        None => Some(vec!["main".to_string()]),
    };
    let mirror = r.opt_parsed(cx, "mirror", |v| archive_url("mirror", v));
    let security_mirror =
        r.opt_parsed(cx, "security_mirror", |v| archive_url("security_mirror", v));
    let snapshot = r.opt_parsed(cx, "snapshot", |v| {
        if is_snapshot_stamp(v) {
            Ok(v.to_string())
        } else {
            Err(format!(
                "snapshot `{v}` must be a timestamp like \"20250520T000000Z\""
            ))
        }
    });
    let architecture = r
        .opt_parsed(cx, "architecture", |v| {
            if v == "amd64" {
                Ok(v.to_string())
            } else {
                Err(format!(
                    "architecture `{v}` is not supported yet: only amd64"
                ))
            }
        })
        .map(|a| a.unwrap_or_else(|| "amd64".to_string()));
    r.finish(cx);

    let labels = labels?;
    let Some(kind) = SourceKind::parse(&labels[0].value) else {
        let kinds: Vec<&str> = SourceKind::ALL.iter().map(|k| k.as_str()).collect();
        cx.error_at(
            labels[0].loc.clone(),
            format!(
                "unknown source type `{}`; supported: {}",
                labels[0].value,
                kinds.join(", ")
            ),
        );
        return None;
    };
    if !is_hcl_ident(&labels[1].value) {
        cx.error_at(
            labels[1].loc.clone(),
            format!(
                "source name `{}` must be an identifier (letters, digits, `_`, `-`) so it can be referenced as source.{}.NAME",
                labels[1].value,
                kind.as_str()
            ),
        );
        return None;
    }
    Some(Source {
        id: SourceId {
            kind,
            name: labels[1].value.clone(),
        },
        suite: suite?.value,
        components: components?,
        mirror: mirror?,
        security_mirror: security_mirror?,
        snapshot: snapshot?,
        architecture: architecture?,
        loc: cx.loc(hcl_edit::Span::span(&b.ident)),
    })
}

fn archive_url(attr: &str, v: &str) -> Result<String, String> {
    if ["http://", "https://", "file://"]
        .iter()
        .any(|p| v.starts_with(p))
    {
        Ok(v.to_string())
    } else {
        Err(format!(
            "{attr} `{v}` must be an http://, https:// or file:// URL"
        ))
    }
}

fn is_snapshot_stamp(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 16
        && b[8] == b'T'
        && b[15] == b'Z'
        && b[..8].iter().chain(&b[9..15]).all(u8::is_ascii_digit)
}

pub(crate) fn is_hcl_ident(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn read_webhook(cx: &mut Cx, b: &hcl_edit::structure::Block) -> Option<Webhook> {
    let labels = hcl::labels(cx, b, &["type", "name"]);
    let mut r = BodyReader::for_block("the notify block", b);
    let url = r.required(cx, "url").and_then(|a| {
        let s = hcl::string(cx, &a.value, "`url`")?;
        if s.value.starts_with("http://") || s.value.starts_with("https://") {
            Some(s.value)
        } else {
            cx.error_at(
                s.loc,
                format!(
                    "webhook url `{}` must be an http:// or https:// URL",
                    s.value
                ),
            );
            None
        }
    });
    let secret_env = r.opt_parsed(cx, "secret_env", |v| {
        let ok = v.starts_with(|c: char| c.is_ascii_uppercase() || c == '_')
            && v.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
        if ok {
            Ok(v.to_string())
        } else {
            // The value is not echoed: it may be the secret itself, pasted by mistake.
            Err("secret_env must name an environment variable (upper-case letters, digits and `_`, like KILN_WEBHOOK_SECRET); the secret itself never goes in kiln.hcl".to_string())
        }
    });
    let events = match r.attr(cx, "events") {
        Some(a) => hcl::string_list(cx, &a.value, "`events`").and_then(|list| {
            let mut ok = true;
            for e in &list {
                if !crate::model::WEBHOOK_EVENTS.contains(&e.value.as_str()) {
                    cx.error_at(
                        e.loc.clone(),
                        format!(
                            "unknown event `{}`; known: {}",
                            e.value,
                            crate::model::WEBHOOK_EVENTS.join(", ")
                        ),
                    );
                    ok = false;
                }
            }
            ok.then(|| list.into_iter().map(|e| e.value).collect::<Vec<_>>())
        }),
        None => Some(
            crate::model::WEBHOOK_EVENTS
                .iter()
                .map(|e| e.to_string())
                .collect(),
        ),
    };
    r.finish(cx);
    let labels = labels?;
    if labels[0].value != "webhook" {
        cx.error_at(
            labels[0].loc.clone(),
            format!(
                "unknown notify type `{}`; supported: webhook",
                labels[0].value
            ),
        );
        return None;
    }
    if !is_hcl_ident(&labels[1].value) {
        cx.error_at(
            labels[1].loc.clone(),
            format!(
                "webhook name `{}` must be an identifier (letters, digits, `_`, `-`)",
                labels[1].value
            ),
        );
        return None;
    }
    Some(Webhook {
        name: labels[1].value.clone(),
        url: url?,
        secret_env: secret_env?,
        events: events?,
    })
}

fn read_retention(cx: &mut Cx, b: &hcl_edit::structure::Block) -> Option<Retention> {
    hcl::labels(cx, b, &[]);
    let mut r = BodyReader::for_block("the retention block", b);
    let d = Retention::default();
    let keep_last = match r.attr(cx, "keep_last") {
        Some(a) => hcl::integer(cx, &a.value, "`keep_last`").and_then(|n| match u32::try_from(n) {
            Ok(n) if n >= 1 => Some(n),
            _ => {
                cx.error(
                    hcl_edit::Span::span(&a.value),
                    "`keep_last` must be at least 1: the newest version of a bucket is always kept",
                );
                None
            }
        }),
        None => Some(d.keep_last),
    };
    let min_age = r.opt_parsed(cx, "min_age", crate::time::parse_duration);
    let grace = r.opt_parsed(cx, "failed_grace", crate::time::parse_duration);
    r.finish(cx);
    Some(Retention {
        keep_last: keep_last?,
        min_age_secs: min_age?.unwrap_or(d.min_age_secs),
        failed_grace_secs: grace?.unwrap_or(d.failed_grace_secs),
    })
}

fn read_policy(
    cx: &mut Cx,
    b: &hcl_edit::structure::Block,
    channels: Option<&[ChannelName]>,
) -> Option<Policy> {
    let labels = hcl::labels(cx, b, &["channel"]);
    let mut r = BodyReader::for_block("the policy block", b);
    let flag = |cx: &mut Cx, r: &mut BodyReader<'_>, name: &'static str| match r.attr(cx, name) {
        Some(a) => hcl::boolean(cx, &a.value, &format!("`{name}`")),
        None => Some(false),
    };
    let require_tests = flag(cx, &mut r, "require_tests");
    let forbid_secrets = flag(cx, &mut r, "forbid_secrets");
    let require_approval = flag(cx, &mut r, "require_approval");
    let restricted = flag(cx, &mut r, "restricted");
    let max_severity = r.opt_parsed(cx, "max_severity", |v| {
        FindingSeverity::ALL
            .into_iter()
            .find(|s| s.as_str() == v)
            .ok_or_else(|| {
                format!("unknown severity `{v}`: expected one of none, low, medium, high, critical")
            })
    });
    let approver_role = match r.attr(cx, "approver_role") {
        Some(a) => hcl::string(cx, &a.value, "`approver_role`").and_then(|s| {
            match Role::ALL.into_iter().find(|v| v.as_str() == s.value) {
                Some(v) => Some(Some((v, s.loc))),
                None => {
                    cx.error_at(
                        s.loc,
                        format!(
                            "unknown role `{}`: expected one of admin, platform, security",
                            s.value
                        ),
                    );
                    None
                }
            }
        }),
        None => Some(None),
    };
    r.finish(cx);

    let label = labels?.pop()?;
    let channel = match ChannelName::new(&label.value) {
        Ok(c) => c,
        Err(e) => {
            cx.error_at(label.loc, e.to_string());
            return None;
        }
    };
    if let Some(chs) = channels
        && !chs.contains(&channel)
    {
        let names: Vec<&str> = chs.iter().map(|c| c.as_str()).collect();
        cx.error_at(
            label.loc,
            format!(
                "policy for undeclared channel `{channel}`; the factory's channels are: {}",
                names.join(", ")
            ),
        );
        return None;
    }
    let require_approval = require_approval?;
    let approver_role = approver_role?;
    if let (false, Some((_, loc))) = (require_approval, &approver_role) {
        cx.error_at(
            loc.clone(),
            "`approver_role` has no effect unless `require_approval = true`",
        );
        return None;
    }
    Some(Policy {
        channel,
        require_tests: require_tests?,
        max_severity: max_severity?,
        forbid_secrets: forbid_secrets?,
        require_approval: require_approval
            .then(|| approver_role.map_or(Role::Security, |(r, _)| r)),
        restricted: restricted?,
    })
}
