//! Reading HCL bodies against a schema, with every problem turned into a located diagnostic.
//!
//! hcl-edit keeps byte spans for every node, which is why it is used rather than a serde-based HCL
//! crate: serde would tell us *that* an attribute is wrong, not *where*. The [`BodyReader`] records
//! which attributes and blocks a caller asked for, so anything left over is reported as unknown
//! with the list of what is allowed.

use std::ops::Range;
use std::sync::Arc;

use hcl_edit::Span as _;
use hcl_edit::expr::{Expression, ObjectKey, TraversalOperator};
use hcl_edit::structure::{Attribute, Block, BlockLabel, Body, Structure};
use hcl_edit::template::Element;

use crate::diagnostic::{Diagnostic, Loc, Spanned};
use crate::source::SourceFile;

/// Per-file context: the source (for locations) and the diagnostics found in it.
#[derive(Debug)]
pub(crate) struct Cx {
    pub src: Arc<SourceFile>,
    pub diags: Vec<Diagnostic>,
}

impl Cx {
    pub fn new(src: Arc<SourceFile>) -> Self {
        Cx {
            src,
            diags: Vec::new(),
        }
    }

    pub fn loc(&self, span: Option<Range<usize>>) -> Loc {
        let r = span.unwrap_or(0..0);
        self.src.loc(r.start, r.end)
    }

    pub fn error(&mut self, span: Option<Range<usize>>, msg: impl Into<String>) {
        let loc = self.loc(span);
        self.diags.push(Diagnostic::error(loc, msg));
    }

    pub fn error_at(&mut self, loc: Loc, msg: impl Into<String>) {
        self.diags.push(Diagnostic::error(loc, msg));
    }
}

/// Parses a whole file; a syntax error becomes one diagnostic at the parser's position.
pub(crate) fn parse_body(cx: &mut Cx) -> Option<Body> {
    match hcl_edit::parser::parse_body(&cx.src.text) {
        Ok(body) => Some(body),
        Err(e) => {
            let off = e.location().offset();
            let msg = e.message().trim().trim_end_matches('.').to_string();
            let msg = if msg.is_empty() {
                "HCL syntax error".to_string()
            } else {
                format!("HCL syntax error: {msg}")
            };
            let loc = cx.src.loc(off, off + 1);
            cx.error_at(loc, msg);
            None
        }
    }
}

/// What a body may contain, learned as the caller asks for things.
#[derive(Debug)]
pub(crate) struct BodyReader<'b> {
    what: String,
    body: &'b Body,
    /// Where to point "missing attribute" errors: the block's type keyword.
    head: Option<Range<usize>>,
    attrs: Vec<&'static str>,
    blocks: Vec<&'static str>,
}

impl<'b> BodyReader<'b> {
    pub fn new(what: impl Into<String>, body: &'b Body, head: Option<Range<usize>>) -> Self {
        BodyReader {
            what: what.into(),
            body,
            head,
            attrs: Vec::new(),
            blocks: Vec::new(),
        }
    }

    pub fn for_block(what: impl Into<String>, block: &'b Block) -> Self {
        Self::new(what, &block.body, block.ident.span())
    }

    /// The attribute `name`, if set; setting it twice is an error.
    pub fn attr(&mut self, cx: &mut Cx, name: &'static str) -> Option<&'b Attribute> {
        self.attrs.push(name);
        let mut found = self
            .body
            .iter()
            .filter_map(|s| s.as_attribute())
            .filter(|a| a.key.as_str() == name);
        let first = found.next()?;
        for dup in found {
            let first_line = cx.loc(first.key.span()).line;
            cx.error(
                dup.key.span(),
                format!("attribute `{name}` is already set on line {first_line}"),
            );
        }
        Some(first)
    }

    pub fn required(&mut self, cx: &mut Cx, name: &'static str) -> Option<&'b Attribute> {
        let a = self.attr(cx, name);
        if a.is_none() {
            let what = self.what.clone();
            cx.error(
                self.head.clone(),
                format!("{what} is missing the required attribute `{name}`"),
            );
        }
        a
    }

    /// An optional string attribute turned into a value by `parse` (whose error message is
    /// reported at the value). `Some(None)`: not set; `None`: set but invalid (already reported).
    pub fn opt_parsed<T>(
        &mut self,
        cx: &mut Cx,
        name: &'static str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<Option<T>> {
        let Some(a) = self.attr(cx, name) else {
            return Some(None);
        };
        let s = string(cx, &a.value, &format!("`{name}`"))?;
        match parse(&s.value) {
            Ok(v) => Some(Some(v)),
            Err(msg) => {
                cx.error_at(s.loc, msg);
                None
            }
        }
    }

    pub fn blocks(&mut self, name: &'static str) -> Vec<&'b Block> {
        self.blocks.push(name);
        self.body.get_blocks(name).collect()
    }

    /// Reports everything the caller did not ask for.
    pub fn finish(self, cx: &mut Cx) {
        for s in self.body.iter() {
            match s {
                Structure::Attribute(a) if !self.attrs.contains(&a.key.as_str()) => {
                    if self.blocks.contains(&a.key.as_str()) {
                        cx.error(
                            a.key.span(),
                            format!(
                                "`{}` is a block in {}: write `{} {{ … }}` without `=`",
                                a.key.as_str(),
                                self.what,
                                a.key.as_str()
                            ),
                        );
                    } else {
                        cx.error(
                            a.key.span(),
                            format!(
                                "unknown attribute `{}` in {}{}",
                                a.key.as_str(),
                                self.what,
                                expected(&self.attrs)
                            ),
                        );
                    }
                }
                Structure::Block(b) if !self.blocks.contains(&b.ident.as_str()) => {
                    if self.attrs.contains(&b.ident.as_str()) {
                        cx.error(
                            b.ident.span(),
                            format!(
                                "`{}` is an attribute in {}: write `{} = …`",
                                b.ident.as_str(),
                                self.what,
                                b.ident.as_str()
                            ),
                        );
                    } else {
                        cx.error(
                            b.ident.span(),
                            format!(
                                "unknown block `{}` in {}{}",
                                b.ident.as_str(),
                                self.what,
                                expected(&self.blocks)
                            ),
                        );
                    }
                }
                _ => {}
            }
        }
    }
}

fn expected(names: &[&str]) -> String {
    let mut v: Vec<&str> = names.to_vec();
    v.sort_unstable();
    v.dedup();
    if v.is_empty() {
        String::new()
    } else {
        format!("; expected one of: {}", v.join(", "))
    }
}

/// How an expression reads to a person, for "expected X, found Y" messages.
pub(crate) fn kind(e: &Expression) -> &'static str {
    match e {
        Expression::Null(_) => "null",
        Expression::Bool(_) => "a bool",
        Expression::Number(_) => "a number",
        Expression::String(_) | Expression::StringTemplate(_) | Expression::HeredocTemplate(_) => {
            "a string"
        }
        Expression::Array(_) => "a list",
        Expression::Object(_) => "an object",
        Expression::Variable(_) | Expression::Traversal(_) => "a reference",
        Expression::FuncCall(_) => "a function call",
        _ => "an expression",
    }
}

fn wrong_type(cx: &mut Cx, e: &Expression, what: &str, want: &str) {
    cx.error(
        e.span(),
        format!("{what} must be {want}, found {}", kind(e)),
    );
}

/// A literal string. Interpolation is refused: definitions are data, so a plan can be computed
/// without evaluating anything.
pub(crate) fn string(cx: &mut Cx, e: &Expression, what: &str) -> Option<Spanned<String>> {
    let value = match e {
        Expression::String(s) => s.value().clone(),
        Expression::StringTemplate(t) => literal_template(cx, t.iter(), e, what)?,
        Expression::HeredocTemplate(h) => literal_template(cx, h.template.iter(), e, what)?,
        _ => {
            wrong_type(cx, e, what, "a string");
            return None;
        }
    };
    Some(Spanned::new(value, cx.loc(e.span())))
}

fn literal_template<'a>(
    cx: &mut Cx,
    elements: impl Iterator<Item = &'a Element>,
    e: &Expression,
    what: &str,
) -> Option<String> {
    let mut out = String::new();
    for el in elements {
        match el {
            Element::Literal(l) => out.push_str(l.value()),
            _ => {
                cx.error(
                    e.span(),
                    format!(
                        "{what} must be a literal string; interpolation (`${{…}}`, `%{{…}}`) is not supported"
                    ),
                );
                return None;
            }
        }
    }
    Some(out)
}

pub(crate) fn boolean(cx: &mut Cx, e: &Expression, what: &str) -> Option<bool> {
    match e {
        Expression::Bool(b) => Some(*b.value()),
        _ => {
            wrong_type(cx, e, what, "true or false");
            None
        }
    }
}

pub(crate) fn integer(cx: &mut Cx, e: &Expression, what: &str) -> Option<u64> {
    match e {
        Expression::Number(n) if n.value().as_u64().is_some() => n.value().as_u64(),
        _ => {
            wrong_type(cx, e, what, "a whole number ≥ 0");
            None
        }
    }
}

pub(crate) fn string_list(cx: &mut Cx, e: &Expression, what: &str) -> Option<Vec<Spanned<String>>> {
    let Expression::Array(a) = e else {
        wrong_type(cx, e, what, "a list of strings");
        return None;
    };
    let mut out = Vec::new();
    let mut ok = true;
    for item in a.iter() {
        match string(cx, item, &format!("each element of {what}")) {
            Some(s) => out.push(s),
            None => ok = false,
        }
    }
    ok.then_some(out)
}

/// `{ key = "value", … }`; keys may be bare identifiers or strings.
pub(crate) fn string_map(
    cx: &mut Cx,
    e: &Expression,
    what: &str,
) -> Option<Vec<(Spanned<String>, Spanned<String>)>> {
    let Expression::Object(o) = e else {
        wrong_type(cx, e, what, "an object of strings");
        return None;
    };
    let mut out = Vec::new();
    let mut ok = true;
    for (k, v) in o.iter() {
        let key = match k {
            ObjectKey::Ident(id) => Some(Spanned::new(id.as_str().to_string(), cx.loc(id.span()))),
            ObjectKey::Expression(ke) => string(cx, ke, &format!("a key of {what}")),
        };
        let val = string(cx, v.expr(), &format!("each value of {what}"));
        match (key, val) {
            (Some(k), Some(v)) => out.push((k, v)),
            _ => ok = false,
        }
    }
    ok.then_some(out)
}

/// A reference such as `source.debian.bookworm`: its dotted parts.
pub(crate) fn reference(cx: &mut Cx, e: &Expression, what: &str) -> Option<Spanned<Vec<String>>> {
    let parts = match e {
        Expression::Variable(v) => Some(vec![v.as_str().to_string()]),
        Expression::Traversal(t) => {
            let mut parts = match &t.expr {
                Expression::Variable(v) => vec![v.as_str().to_string()],
                _ => Vec::new(),
            };
            if parts.is_empty() {
                None
            } else {
                let mut ok = true;
                for op in &t.operators {
                    match op.value() {
                        TraversalOperator::GetAttr(id) => parts.push(id.as_str().to_string()),
                        _ => ok = false,
                    }
                }
                ok.then_some(parts)
            }
        }
        _ => None,
    };
    match parts {
        Some(p) => Some(Spanned::new(p, cx.loc(e.span()))),
        None => {
            wrong_type(
                cx,
                e,
                what,
                "a reference like `source.debian.NAME` or `image.NAME`",
            );
            None
        }
    }
}

/// A block's labels as strings, checked against the number the block type takes.
pub(crate) fn labels(cx: &mut Cx, b: &Block, names: &[&str]) -> Option<Vec<Spanned<String>>> {
    let got: Vec<Spanned<String>> = b
        .labels
        .iter()
        .map(|l| match l {
            BlockLabel::Ident(i) => Spanned::new(i.as_str().to_string(), cx.loc(i.span())),
            BlockLabel::String(s) => Spanned::new(s.value().clone(), cx.loc(s.span())),
        })
        .collect();
    if got.len() != names.len() {
        let ident = b.ident.as_str();
        let usage = if names.is_empty() {
            format!("`{ident} {{ … }}`")
        } else {
            let labels: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
            format!("`{ident} {} {{ … }}`", labels.join(" "))
        };
        let span = got
            .get(names.len())
            .map(|s| s.loc.clone())
            .unwrap_or_else(|| cx.loc(b.ident.span()));
        cx.error_at(
            span,
            format!(
                "`{ident}` takes {} label{}: {usage}",
                names.len(),
                if names.len() == 1 { "" } else { "s" }
            ),
        );
        return None;
    }
    Some(got)
}
