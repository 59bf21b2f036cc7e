//! Definition errors that point at a file, line and column.
//!
//! Every problem found while loading a factory becomes a [`Diagnostic`]; loading never stops at the
//! first one, so a user fixes a whole factory in one round trip. Rendering follows the compiler
//! convention `PATH:LINE:COL: error: MESSAGE` (editors and CI annotators parse it), followed by the
//! offending line and a caret under the span.

use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::source::SourceFile;

/// A place in a definition file: the file (relative to the factory root), a 1-based line and column
/// (columns count characters, not bytes) and the length of the span in characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Loc {
    pub path: Arc<Path>,
    pub line: usize,
    pub col: usize,
    pub len: usize,
}

impl fmt::Display for Loc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.path.display(), self.line, self.col)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Error,
    Warning,
}

impl Severity {
    fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// One problem in a definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub loc: Loc,
    pub message: String,
}

impl Diagnostic {
    pub fn error(loc: Loc, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            loc,
            message: message.into(),
        }
    }

    pub fn warning(loc: Loc, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            loc,
            message: message.into(),
        }
    }
}

/// `{"severity","path","line","column","message"}`: the machine form CI annotators read.
impl serde::Serialize for Diagnostic {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Diagnostic", 5)?;
        st.serialize_field("severity", self.severity.as_str())?;
        st.serialize_field("path", &self.loc.path.to_string_lossy())?;
        st.serialize_field("line", &self.loc.line)?;
        st.serialize_field("column", &self.loc.col)?;
        st.serialize_field("message", &self.message)?;
        st.end()
    }
}

/// Everything found while loading a factory, plus the sources needed to render snippets.
#[derive(Debug, Default, Clone)]
pub struct Diagnostics {
    items: Vec<Diagnostic>,
    /// Keyed by path: a factory has one source per image, and lookups happen per file read.
    sources: HashMap<Arc<Path>, Arc<SourceFile>>,
}

impl Diagnostics {
    pub fn push(&mut self, d: Diagnostic) {
        self.items.push(d);
    }

    pub(crate) fn add_source(&mut self, src: Arc<SourceFile>) {
        self.sources.entry(src.path.clone()).or_insert(src);
    }

    pub fn has_errors(&self) -> bool {
        self.items.iter().any(|d| d.severity == Severity::Error)
    }

    pub fn error_count(&self) -> usize {
        self.items
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count()
    }

    /// Diagnostics in a stable order: by file, then position, then message.
    pub fn sorted(&self) -> Vec<&Diagnostic> {
        let mut v: Vec<&Diagnostic> = self.items.iter().collect();
        v.sort_by(|a, b| {
            (&a.loc.path, a.loc.line, a.loc.col, &a.message).cmp(&(
                &b.loc.path,
                b.loc.line,
                b.loc.col,
                &b.message,
            ))
        });
        v.dedup_by(|a, b| a == b);
        v
    }

    pub fn iter(&self) -> impl Iterator<Item = &Diagnostic> {
        self.items.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Renders every diagnostic; paths are shown joined onto `display_root` (pass the factory
    /// directory as the user wrote it so the paths are clickable from their shell).
    pub fn render(&self, display_root: &Path) -> String {
        let mut out = String::new();
        for d in self.sorted() {
            let path: PathBuf = display_root.join(&d.loc.path);
            let _ = writeln!(
                out,
                "{}:{}:{}: {}: {}",
                path.display(),
                d.loc.line,
                d.loc.col,
                d.severity.as_str(),
                d.message
            );
            if let Some(src) = self.sources.get(&d.loc.path) {
                render_snippet(&mut out, src, &d.loc);
            }
        }
        out
    }
}

fn render_snippet(out: &mut String, src: &SourceFile, loc: &Loc) {
    let Some(line) = src.line_text(loc.line) else {
        return;
    };
    let gutter = loc.line.to_string();
    let pad = " ".repeat(gutter.len());
    // Tabs would shift the caret; show them as single spaces in the snippet.
    let shown: String = line
        .chars()
        .map(|c| if c == '\t' { ' ' } else { c })
        .collect();
    let line_chars = shown.chars().count();
    let start = loc.col.saturating_sub(1).min(line_chars);
    let len = loc.len.clamp(1, (line_chars - start).max(1));
    let _ = writeln!(out, "{pad} |");
    let _ = writeln!(out, "{gutter} | {shown}");
    let _ = writeln!(out, "{pad} | {}{}", " ".repeat(start), "^".repeat(len));
}

/// A value with the place it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spanned<T> {
    pub value: T,
    pub loc: Loc,
}

impl<T> Spanned<T> {
    pub fn new(value: T, loc: Loc) -> Self {
        Spanned { value, loc }
    }
}
