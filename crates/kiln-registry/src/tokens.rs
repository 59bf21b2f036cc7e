//! API tokens for `kiln serve`: a name, a role, an optional expiry. The secret (`kiln_` + 32
//! random bytes in hex) is returned once at creation; the registry keeps only its SHA-256, so a
//! leaked database does not leak working tokens. Creating and revoking are admin operations and
//! are audited like every other mutation.

use std::io::Read;

use crate::params;
use crate::sql::OptionalExt;
use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::error::{RegistryError, Result, invalid};
use crate::ops::{Registry, require, valid_name};
use crate::{Actor, Role, audit};

/// What `kiln token list` and the API show of a token (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenInfo {
    pub name: String,
    pub role: Role,
    pub created_at: String,
    pub created_by: String,
    pub expires_at: Option<String>,
    pub revoked_at: Option<String>,
}

/// The prefix every secret carries, so scanners and humans recognise one.
pub const TOKEN_PREFIX: &str = "kiln_";

fn digest(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn new_secret() -> Result<String> {
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| RegistryError::Invalid(format!("reading /dev/urandom: {e}")))?;
    Ok(format!(
        "{TOKEN_PREFIX}{}",
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    ))
}

impl Registry {
    /// Creates a token and returns its secret (shown once). `expires_at` is an RFC 3339 time.
    pub fn create_token(
        &mut self,
        actor: &Actor,
        name: &str,
        role: Role,
        expires_at: Option<&str>,
    ) -> Result<String> {
        require(
            actor,
            &[Role::Admin],
            "create tokens",
            "managing tokens needs the admin role",
        )?;
        valid_name("token", name)?;
        let secret = new_secret()?;
        let hash = digest(&secret);
        self.tx(|tx, now| {
            if let Some(e) = expires_at
                && e <= now
            {
                return invalid(format!("token expiry {e} is not in the future"));
            }
            let exists: bool = tx.query_row(
                "SELECT EXISTS (SELECT 1 FROM tokens WHERE name = ?1)",
                [name],
                |r| r.get(0),
            )?;
            if exists {
                return invalid(format!(
                    "a token named `{name}` already exists: revoke it or pick another name"
                ));
            }
            tx.execute(
                "INSERT INTO tokens (name, role, hash, created_at, created_by, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![name, role.as_str(), hash, now, actor.name, expires_at],
            )?;
            audit::append(
                tx,
                now,
                &actor.name,
                "token.create",
                name,
                &json!({"role": role.as_str(), "expires_at": expires_at}),
            )
        })?;
        Ok(secret)
    }

    /// Revokes a token by name; it stops working at once.
    pub fn revoke_token(&mut self, actor: &Actor, name: &str) -> Result<()> {
        require(
            actor,
            &[Role::Admin],
            "revoke tokens",
            "managing tokens needs the admin role",
        )?;
        self.tx(|tx, now| {
            let n = tx.execute(
                "UPDATE tokens SET revoked_at = ?2 WHERE name = ?1 AND revoked_at IS NULL",
                params![name, now],
            )?;
            if n == 0 {
                return Err(RegistryError::NotFound {
                    what: "active token",
                    id: name.to_string(),
                });
            }
            audit::append(tx, now, &actor.name, "token.revoke", name, &json!({}))
        })
    }

    pub fn tokens(&mut self) -> Result<Vec<TokenInfo>> {
        self.conn.read(|tx| {
            tx.query_all(
                "SELECT name, role, created_at, created_by, expires_at, revoked_at FROM tokens ORDER BY name",
                params![],
                |r| {
                    Ok(TokenInfo {
                        name: r.get(0)?,
                        role: Role::parse(&r.get::<_, String>(1)?).unwrap_or(Role::Consumer),
                        created_at: r.get(2)?,
                        created_by: r.get(3)?,
                        expires_at: r.get(4)?,
                        revoked_at: r.get(5)?,
                    })
                },
            )
        })
    }

    /// The actor a secret stands for: `None` when it is unknown, revoked or expired.
    pub fn authenticate(&mut self, secret: &str) -> Result<Option<Actor>> {
        if !secret.starts_with(TOKEN_PREFIX) {
            return Ok(None);
        }
        let now = self.now();
        let row: Option<(String, String)> = self.conn.read(|tx| {
            tx.query_row(
                "SELECT name, role FROM tokens WHERE hash = ?1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?2)",
                params![digest(secret), now],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
        })?;
        Ok(row.and_then(|(name, role)| Role::parse(&role).map(|r| Actor::new(name, r))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg() -> (tempfile::TempDir, Registry) {
        let d = tempfile::tempdir().unwrap();
        let r = Registry::open(&d.path().join("r.sqlite")).unwrap();
        (d, r)
    }

    #[test]
    fn tokens_authenticate_until_revoked_and_keep_no_secret() {
        let (_d, mut r) = reg();
        let admin = Actor::new("root", Role::Admin);
        let secret = r.create_token(&admin, "ci-main", Role::Ci, None).unwrap();
        assert!(secret.starts_with("kiln_") && secret.len() == 5 + 64);
        assert_eq!(
            r.authenticate(&secret).unwrap(),
            Some(Actor::new("ci-main", Role::Ci))
        );
        assert_eq!(r.authenticate("kiln_00").unwrap(), None);
        // Only the digest is stored.
        let stored: String = r
            .conn
            .read(|tx| tx.query_row("SELECT hash FROM tokens", params![], |x| x.get(0)))
            .unwrap();
        assert_ne!(stored, secret);
        assert!(!stored.contains(&secret[5..]));
        // Names are unique; only admins manage tokens.
        assert!(r.create_token(&admin, "ci-main", Role::Ci, None).is_err());
        let ci = Actor::new("ci-main", Role::Ci);
        assert!(matches!(
            r.create_token(&ci, "mine", Role::Admin, None),
            Err(RegistryError::Forbidden { .. })
        ));
        r.revoke_token(&admin, "ci-main").unwrap();
        assert_eq!(r.authenticate(&secret).unwrap(), None);
        assert!(r.revoke_token(&admin, "ci-main").is_err());
        let actions: Vec<String> = r
            .audit_entries()
            .unwrap()
            .into_iter()
            .map(|e| e.action)
            .collect();
        assert_eq!(actions, ["token.create", "token.revoke"]);
    }

    #[test]
    fn expired_tokens_do_not_authenticate() {
        let (_d, mut r) = reg();
        let admin = Actor::new("root", Role::Admin);
        assert!(
            r.create_token(
                &admin,
                "old",
                Role::Consumer,
                Some("2000-01-01T00:00:00.000Z")
            )
            .is_err(),
            "an expiry in the past is refused"
        );
        let s = r
            .create_token(
                &admin,
                "soon",
                Role::Consumer,
                Some("2999-01-01T00:00:00.000Z"),
            )
            .unwrap();
        assert!(r.authenticate(&s).unwrap().is_some());
        r.execute_unchecked("UPDATE tokens SET expires_at = '2001-01-01T00:00:00.000Z'")
            .unwrap();
        assert_eq!(r.authenticate(&s).unwrap(), None);
    }
}
