//! The local vulnerability index: one SQLite file. Import is incremental: a record is keyed by
//! (origin, record id, ecosystem, package) and rewritten only when its content changed, so
//! re-importing a newer export reports what is new, what changed and what stayed.

use std::io::Read;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{Affected, osv, tracker};
use crate::ScanError;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS affected (
    origin    TEXT NOT NULL,
    record    TEXT NOT NULL,
    ecosystem TEXT NOT NULL,
    package   TEXT NOT NULL,
    body      TEXT NOT NULL,
    digest    TEXT NOT NULL,
    PRIMARY KEY (origin, record, ecosystem, package)
);
CREATE INDEX IF NOT EXISTS affected_by_package ON affected (ecosystem, package);
CREATE TABLE IF NOT EXISTS imports (
    at        INTEGER NOT NULL,
    source    TEXT NOT NULL,
    counts    TEXT NOT NULL
);
";

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ImportCounts {
    /// Files (or zip entries) read.
    pub files: usize,
    pub added: usize,
    pub updated: usize,
    pub unchanged: usize,
    /// Entries that could not be used (unknown releases, other range types, unreadable files).
    pub skipped: usize,
}

#[derive(Debug)]
pub struct VulnDb {
    path: PathBuf,
    conn: Connection,
}

impl VulnDb {
    pub fn open(path: &Path) -> Result<VulnDb, ScanError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(ScanError::io(format!("creating {}", dir.display())))?;
        }
        let conn = Connection::open(path).map_err(|e| db_err(path, e))?;
        conn.execute_batch("PRAGMA journal_mode=WAL;")
            .and_then(|_| conn.execute_batch(SCHEMA))
            .map_err(|e| db_err(path, e))?;
        Ok(VulnDb {
            path: path.to_path_buf(),
            conn,
        })
    }

    /// Opens an existing index read-only; an error says how to create one.
    pub fn open_existing(path: &Path) -> Result<VulnDb, ScanError> {
        if !path.exists() {
            return Err(ScanError::VulnDb {
                path: path.to_path_buf(),
                message: "does not exist: import data first with `kiln vulndb import PATH`".into(),
            });
        }
        VulnDb::open(path)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Imports a file (OSV record, JSON array of OSV records, Debian tracker JSON), a zip of
    /// such files, or a directory of them (recursively), in one transaction.
    pub fn import(&mut self, path: &Path, now: u64) -> Result<ImportCounts, ScanError> {
        let mut counts = ImportCounts::default();
        let mut docs: Vec<(String, Vec<u8>)> = Vec::new();
        collect(path, &mut docs, &mut counts)?;
        let tx = self.conn.transaction().map_err(|e| db_err(&self.path, e))?;
        for (name, bytes) in docs {
            counts.files += 1;
            let Ok(v) = serde_json::from_slice::<Value>(&bytes) else {
                tracing::warn!(file = %name, "not JSON: skipped");
                counts.skipped += 1;
                continue;
            };
            let (records, skipped) = match records_of(&v) {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(file = %name, error = %e, "skipped");
                    counts.skipped += 1;
                    continue;
                }
            };
            counts.skipped += skipped;
            for a in records {
                let body = serde_json::to_string(&a).unwrap_or_default();
                let digest = kiln_build::hash::hex(&Sha256::digest(body.as_bytes()));
                let old: Option<String> = tx
                    .query_row(
                        "SELECT digest FROM affected WHERE origin=?1 AND record=?2 AND ecosystem=?3 AND package=?4",
                        params![a.origin, a.record, a.ecosystem, a.package],
                        |r| r.get(0),
                    )
                    .optional()
                    .map_err(|e| db_err(&self.path, e))?;
                match old {
                    Some(d) if d == digest => counts.unchanged += 1,
                    Some(_) => counts.updated += 1,
                    None => counts.added += 1,
                }
                tx.execute(
                    "INSERT INTO affected (origin, record, ecosystem, package, body, digest)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT (origin, record, ecosystem, package)
                     DO UPDATE SET body = excluded.body, digest = excluded.digest",
                    params![a.origin, a.record, a.ecosystem, a.package, body, digest],
                )
                .map_err(|e| db_err(&self.path, e))?;
            }
        }
        tx.execute(
            "INSERT INTO imports (at, source, counts) VALUES (?1, ?2, ?3)",
            params![
                now as i64,
                path.display().to_string(),
                serde_json::to_string(&counts).unwrap_or_default()
            ],
        )
        .map_err(|e| db_err(&self.path, e))?;
        tx.commit().map_err(|e| db_err(&self.path, e))?;
        Ok(counts)
    }

    /// Every record about `package` in `ecosystem`.
    pub fn affecting(&self, ecosystem: &str, package: &str) -> Result<Vec<Affected>, ScanError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT body FROM affected WHERE ecosystem = ?1 AND package = ?2")
            .map_err(|e| db_err(&self.path, e))?;
        let rows = stmt
            .query_map(params![ecosystem, package], |r| r.get::<_, String>(0))
            .map_err(|e| db_err(&self.path, e))?;
        let mut out = Vec::new();
        for r in rows {
            let body = r.map_err(|e| db_err(&self.path, e))?;
            let a: Affected = serde_json::from_str(&body).map_err(|e| ScanError::VulnDb {
                path: self.path.clone(),
                message: format!("unreadable record: {e}"),
            })?;
            out.push(a);
        }
        Ok(out)
    }

    /// Records per ecosystem, for `kiln vulndb status`.
    pub fn stats(&self) -> Result<Vec<(String, u64)>, ScanError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT ecosystem, count(*) FROM affected GROUP BY ecosystem ORDER BY ecosystem",
            )
            .map_err(|e| db_err(&self.path, e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))
            })
            .map_err(|e| db_err(&self.path, e))?;
        rows.collect::<Result<_, _>>()
            .map_err(|e| db_err(&self.path, e))
    }
}

/// The normalised records of one JSON document, and how many entries were skipped.
pub fn records_of(v: &Value) -> Result<(Vec<Affected>, usize), String> {
    if v.get("affected").is_some() && v.get("id").is_some() {
        return Ok((osv::parse(v)?, 0));
    }
    if let Some(list) = v.as_array() {
        let mut out = Vec::new();
        let mut skipped = 0;
        for r in list {
            match osv::parse(r) {
                Ok(a) => out.extend(a),
                Err(_) => skipped += 1,
            }
        }
        return Ok((out, skipped));
    }
    if v.is_object() {
        return tracker::parse(v);
    }
    Err("neither an OSV record nor Debian security tracker JSON".into())
}

fn collect(
    path: &Path,
    out: &mut Vec<(String, Vec<u8>)>,
    counts: &mut ImportCounts,
) -> Result<(), ScanError> {
    let meta =
        std::fs::metadata(path).map_err(ScanError::io(format!("reading {}", path.display())))?;
    if meta.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(ScanError::io(format!("listing {}", path.display())))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        for e in entries {
            let ext = e.extension().and_then(|x| x.to_str()).unwrap_or("");
            if e.is_dir() || ext == "json" || ext == "zip" {
                collect(&e, out, counts)?;
            }
        }
        return Ok(());
    }
    let bytes =
        std::fs::read(path).map_err(ScanError::io(format!("reading {}", path.display())))?;
    if bytes.starts_with(b"PK\x03\x04") {
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes))
            .map_err(|e| ScanError::Invalid(format!("{}: {e}", path.display())))?;
        for i in 0..zip.len() {
            let mut f = zip
                .by_index(i)
                .map_err(|e| ScanError::Invalid(format!("{}: {e}", path.display())))?;
            if !f.is_file() || !f.name().ends_with(".json") {
                continue;
            }
            let mut buf = Vec::with_capacity(f.size() as usize);
            if f.read_to_end(&mut buf).is_err() {
                counts.skipped += 1;
                continue;
            }
            out.push((format!("{}!{}", path.display(), f.name()), buf));
        }
    } else {
        out.push((path.display().to_string(), bytes));
    }
    Ok(())
}

fn db_err(path: &Path, e: rusqlite::Error) -> ScanError {
    ScanError::VulnDb {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}
