//! Reading YAML with positions (marked-yaml keeps a line and column for every node), in the same
//! diagnostic style as the HCL reader. Shared by check files and the account map.

use marked_yaml::types::{MarkedMappingNode, MarkedScalarNode};
use marked_yaml::{LoadError, LoaderOptions, Node};

use crate::diagnostic::{Loc, Spanned};
use crate::hcl::Cx;

/// Parses a document whose top level must be a mapping.
pub(crate) fn parse_mapping(cx: &mut Cx) -> Option<MarkedMappingNode> {
    if cx.src.text.trim().is_empty() {
        let loc = cx.src.start();
        cx.error_at(loc, "the file is empty");
        return None;
    }
    let opts = LoaderOptions::default().error_on_duplicate_keys(true);
    match marked_yaml::parse_yaml_with_options(0, &cx.src.text, opts) {
        Ok(Node::Mapping(m)) => Some(m),
        Ok(other) => {
            let loc = node_loc(cx, &other);
            cx.error_at(loc, "the top level must be a mapping (`key: value` lines)");
            None
        }
        Err(e) => {
            let (marker, msg) = match &e {
                LoadError::ScanError(m, se) => {
                    (Some(*m), format!("YAML syntax error: {}", se.info()))
                }
                LoadError::DuplicateKey(d) => (
                    d.key.span().start().copied(),
                    format!(
                        "key `{}` is repeated (first on line {})",
                        d.key.as_str(),
                        d.prev_key.span().start().map_or(0, |m| m.line())
                    ),
                ),
                LoadError::TopLevelMustBeMapping(m) => (
                    Some(*m),
                    "the top level must be a mapping (`key: value` lines)".to_string(),
                ),
                LoadError::UnexpectedAnchor(m) => (
                    Some(*m),
                    "YAML anchors and aliases are not supported here".to_string(),
                ),
                LoadError::UnexpectedTag(m) => {
                    (Some(*m), "YAML tags are not supported here".to_string())
                }
                LoadError::MappingKeyMustBeScalar(m) => {
                    (Some(*m), "mapping keys must be plain strings".to_string())
                }
                other => (None, format!("YAML error: {other}")),
            };
            let loc = match marker {
                Some(m) => cx.src.loc_line_col(m.line(), m.column(), 1),
                None => cx.src.start(),
            };
            cx.error_at(loc, msg);
            None
        }
    }
}

pub(crate) fn node_loc(cx: &Cx, n: &Node) -> Loc {
    let len = n
        .as_scalar()
        .map_or(1, |s| s.as_str().chars().count().max(1));
    match n.span().start() {
        Some(m) => cx.src.loc_line_col(m.line(), m.column(), len),
        None => cx.src.start(),
    }
}

pub(crate) fn scalar_loc(cx: &Cx, s: &MarkedScalarNode) -> Loc {
    match s.span().start() {
        Some(m) => cx
            .src
            .loc_line_col(m.line(), m.column(), s.as_str().chars().count().max(1)),
        None => cx.src.start(),
    }
}

pub(crate) fn kind(n: &Node) -> &'static str {
    match n {
        Node::Scalar(_) => "a scalar",
        Node::Sequence(_) => "a list",
        Node::Mapping(_) => "a mapping",
    }
}

/// A mapping read key by key; keys nobody asked for are reported as unknown.
#[derive(Debug)]
pub(crate) struct MapReader<'m> {
    what: String,
    map: &'m MarkedMappingNode,
    known: Vec<&'static str>,
}

impl<'m> MapReader<'m> {
    pub fn new(what: impl Into<String>, map: &'m MarkedMappingNode) -> Self {
        MapReader {
            what: what.into(),
            map,
            known: Vec::new(),
        }
    }

    pub fn get(&mut self, key: &'static str) -> Option<&'m Node> {
        self.known.push(key);
        self.map.get_node(key)
    }

    pub fn string(&mut self, cx: &mut Cx, key: &'static str) -> Option<Spanned<String>> {
        let n = self.get(key)?;
        string(cx, n, key)
    }

    /// A string, or a list of strings: `contains: "x"` and `contains: ["x", "y"]` both read.
    pub fn strings(&mut self, cx: &mut Cx, key: &'static str) -> Vec<Spanned<String>> {
        let Some(n) = self.get(key) else {
            return Vec::new();
        };
        match n {
            Node::Sequence(seq) => seq.iter().filter_map(|i| string(cx, i, key)).collect(),
            _ => string(cx, n, key).into_iter().collect(),
        }
    }

    pub fn boolean(&mut self, cx: &mut Cx, key: &'static str) -> Option<Spanned<bool>> {
        let n = self.get(key)?;
        let loc = node_loc(cx, n);
        match n.as_scalar().and_then(|s| s.as_bool()) {
            Some(b) => Some(Spanned::new(b, loc)),
            None => {
                cx.error_at(
                    loc,
                    format!("`{key}` must be true or false, found {}", describe(n)),
                );
                None
            }
        }
    }

    pub fn integer(&mut self, cx: &mut Cx, key: &'static str) -> Option<Spanned<i64>> {
        let n = self.get(key)?;
        let loc = node_loc(cx, n);
        match n.as_scalar().and_then(|s| s.as_str().parse::<i64>().ok()) {
            Some(v) => Some(Spanned::new(v, loc)),
            None => {
                cx.error_at(
                    loc,
                    format!("`{key}` must be an integer, found {}", describe(n)),
                );
                None
            }
        }
    }

    pub fn finish(self, cx: &mut Cx) {
        for (k, _) in self.map.iter() {
            if !self.known.contains(&k.as_str()) {
                let mut known = self.known.clone();
                known.sort_unstable();
                known.dedup();
                let loc = scalar_loc(cx, k);
                cx.error_at(
                    loc,
                    format!(
                        "unknown key `{}` in {}; expected one of: {}",
                        k.as_str(),
                        self.what,
                        known.join(", ")
                    ),
                );
            }
        }
    }
}

fn describe(n: &Node) -> String {
    match n.as_scalar() {
        Some(s) => format!("`{}`", s.as_str()),
        None => kind(n).to_string(),
    }
}

pub(crate) fn string(cx: &mut Cx, n: &Node, key: &str) -> Option<Spanned<String>> {
    match n {
        Node::Scalar(s) => Some(Spanned::new(s.as_str().to_string(), scalar_loc(cx, s))),
        _ => {
            let loc = node_loc(cx, n);
            cx.error_at(loc, format!("`{key}` must be a string, found {}", kind(n)));
            None
        }
    }
}
