//! A definition file's text with a line index, so byte offsets from the parsers become the
//! line and column a person sees.

use std::path::Path;
use std::sync::Arc;

use crate::diagnostic::Loc;

#[derive(Debug)]
pub struct SourceFile {
    /// Path relative to the factory root.
    pub path: Arc<Path>,
    pub text: String,
    line_starts: Vec<usize>,
}

impl SourceFile {
    pub fn new(path: impl AsRef<Path>, text: String) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(
            text.bytes()
                .enumerate()
                .filter(|&(_, b)| b == b'\n')
                .map(|(i, _)| i + 1),
        );
        SourceFile {
            path: Arc::from(path.as_ref()),
            text,
            line_starts,
        }
    }

    /// Location of a byte range; offsets past the end clamp to the end of the text.
    pub fn loc(&self, start: usize, end: usize) -> Loc {
        let start = floor_char_boundary(&self.text, start.min(self.text.len()));
        let end = floor_char_boundary(&self.text, end.clamp(start, self.text.len()));
        let line_idx = match self.line_starts.binary_search(&start) {
            Ok(i) => i,
            Err(i) => i - 1,
        };
        let line_start = self.line_starts[line_idx];
        let col = self.text[line_start..start].chars().count() + 1;
        // A span shown on one line: cut it at the end of its first line.
        let line_end = self.text[start..]
            .find('\n')
            .map_or(self.text.len(), |i| start + i);
        let len = self.text[start..end.min(line_end)].chars().count();
        Loc {
            path: self.path.clone(),
            line: line_idx + 1,
            col,
            len,
        }
    }

    /// Location from a 1-based line and column as reported by a parser that counts characters.
    pub fn loc_line_col(&self, line: usize, col: usize, len: usize) -> Loc {
        Loc {
            path: self.path.clone(),
            line: line.max(1),
            col: col.max(1),
            len,
        }
    }

    /// Location of the whole file's start, for problems that belong to the file itself.
    pub fn start(&self) -> Loc {
        self.loc(0, 0)
    }

    /// The text of a 1-based line without its line break.
    pub fn line_text(&self, line: usize) -> Option<&str> {
        let start = *self.line_starts.get(line.checked_sub(1)?)?;
        let end = self
            .line_starts
            .get(line)
            .map_or(self.text.len(), |&e| e.saturating_sub(1));
        Some(self.text[start..end.max(start)].trim_end_matches('\r'))
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_become_one_based_character_columns() {
        let src = SourceFile::new("f.hcl", "ab\nxé = 1\n".to_string());
        let loc = src.loc(9, 10); // the "1"; "é" is two bytes but one column
        assert_eq!((loc.line, loc.col, loc.len), (2, 6, 1));
        assert_eq!(src.line_text(2), Some("xé = 1"));
        assert_eq!(src.loc(0, 2).col, 1);
    }

    #[test]
    fn offsets_past_the_end_clamp() {
        let src = SourceFile::new("f.hcl", "a\n".to_string());
        let loc = src.loc(99, 120);
        assert_eq!((loc.line, loc.col), (2, 1));
    }
}
