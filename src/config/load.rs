//! Reading a config file: TOML syntax, types, unknown keys, then `compile`; every problem
//! found is reported at once with its key path and the line it stands on.

use std::fmt;
use std::ops::Range;
use std::path::Path;

use deskgate_provider::config::Problem;
use toml_edit::{ImDocument, Item, Table, Value};

use super::file::FileConfig;
use super::{Config, compile};

/// A problem in a config file, located.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file's name as given.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub col: usize,
    /// Key path such as `rules[2].permission`.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: {}: {}", self.file, self.line, self.col, self.path, self.message)
    }
}

/// Reads and compiles a config file.
pub fn load_file(path: &Path) -> Result<Config, Vec<Diagnostic>> {
    read_and_load(path, false).map(|(config, _)| config)
}

/// Reads and compiles a config file as `deskgate check` does on a machine that may not hold
/// the deployment's secrets: an absent secret (a `*_file` that does not exist, a `*_env`
/// that is not set) is returned as a warning, once, and the rest is checked as if it were
/// there. With `strict`, absent secrets are problems like any other.
pub fn check_file(path: &Path, strict: bool) -> Result<(Config, Vec<Diagnostic>), Vec<Diagnostic>> {
    read_and_load(path, !strict)
}

fn read_and_load(path: &Path, absent_ok: bool) -> Result<(Config, Vec<Diagnostic>), Vec<Diagnostic>> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![Diagnostic {
            file: name.clone(),
            line: 1,
            col: 1,
            path: "file".into(),
            message: format!("cannot read: {e}"),
        }]
    })?;
    let base = path.parent().unwrap_or(Path::new("."));
    load_with(&name, &text, base, absent_ok)
}

/// Compiles config text; `base` is the folder relative paths in it are read from.
pub fn load_str(name: &str, text: &str, base: &Path) -> Result<Config, Vec<Diagnostic>> {
    load_with(name, text, base, false).map(|(config, _)| config)
}

fn load_with(
    name: &str,
    text: &str,
    base: &Path,
    absent_ok: bool,
) -> Result<(Config, Vec<Diagnostic>), Vec<Diagnostic>> {
    let at = |span: Option<Range<usize>>, path: String, message: String| {
        let (line, col) = line_col(text, span.map_or(0, |s| s.start));
        Diagnostic { file: name.to_owned(), line, col, path, message }
    };
    let doc = ImDocument::parse(text.to_owned())
        .map_err(|e| vec![at(e.span(), "syntax".into(), first_line(e.message()))])?;

    let mut unknown = Vec::new();
    let file: FileConfig =
        match serde_ignored::deserialize(toml_edit::de::Deserializer::from(doc.clone()), |p| {
            unknown.push(key_path(&p))
        }) {
            Ok(file) => file,
            Err(e) => {
                let span = e.span();
                let path = span.clone().and_then(|s| path_at(doc.as_table(), s.start));
                return Err(vec![at(span, path.unwrap_or_else(|| "syntax".into()), e.message().into())]);
            }
        };

    let mut problems: Vec<Problem> = unknown.into_iter().map(|p| Problem::new(p, "unknown key")).collect();
    let mut compiled = compile::compile(file, base, &mut problems);
    let (absent, problems): (Vec<Problem>, Vec<Problem>) =
        problems.into_iter().partition(|p| absent_ok && p.absent);
    let located = |problems: Vec<Problem>| {
        let mut out: Vec<Diagnostic> =
            problems.into_iter().map(|p| at(span_of(doc.as_table(), &p.path), p.path, p.message)).collect();
        out.sort_by_key(|d| (d.line, d.col));
        out.dedup();
        out
    };
    if problems.is_empty() {
        compiled.fingerprint = fingerprint(text);
        return Ok((compiled, located(absent)));
    }
    Err(located(problems))
}

/// The first 64 bits of the text's SHA-256, never 0 (the generation of no config).
fn fingerprint(text: &str) -> u64 {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(text.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first).max(1)
}

fn first_line(message: &str) -> String {
    message.lines().find(|l| !l.trim().is_empty()).unwrap_or(message).trim().to_owned()
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// Our key path spelling for serde_ignored's path: `a.b[2].c`.
fn key_path(path: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path as P;
    match path {
        P::Root => String::new(),
        P::Seq { parent, index } => format!("{}[{index}]", key_path(parent)),
        P::Map { parent, key } => deskgate_provider::config::join_path(&key_path(parent), &quote_key(key)),
        P::Some { parent } | P::NewtypeStruct { parent } | P::NewtypeVariant { parent } => key_path(parent),
    }
}

fn quote_key(key: &str) -> String {
    if !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        key.to_owned()
    } else {
        format!("\"{}\"", key.replace('"', "\\\""))
    }
}

/// Splits `a."b.c"[2].d` into `a`, `b.c`, `[2]`, `d`.
fn split_path(path: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut chars = path.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                while let Some(q) = chars.next() {
                    match q {
                        '\\' => cur.extend(chars.next()),
                        '"' => break,
                        _ => cur.push(q),
                    }
                }
            }
            '.' => parts.push(std::mem::take(&mut cur)),
            '[' => {
                if !cur.is_empty() {
                    parts.push(std::mem::take(&mut cur));
                }
                cur.push('[');
                for d in chars.by_ref() {
                    cur.push(d);
                    if d == ']' {
                        break;
                    }
                }
                parts.push(std::mem::take(&mut cur));
                if chars.peek() == Some(&'.') {
                    chars.next();
                }
            }
            _ => cur.push(c),
        }
    }
    if !cur.is_empty() {
        parts.push(cur);
    }
    parts
}

enum Node<'a> {
    Item(&'a Item),
    Value(&'a Value),
    Table(&'a Table),
}

impl<'a> Node<'a> {
    fn child(&self, part: &str) -> Option<(Node<'a>, Option<Range<usize>>)> {
        if let Some(index) = part.strip_prefix('[').and_then(|p| p.strip_suffix(']')) {
            let index: usize = index.parse().ok()?;
            return match self {
                Node::Item(Item::ArrayOfTables(a)) => {
                    let t = a.get(index)?;
                    Some((Node::Table(t), t.span()))
                }
                Node::Item(Item::Value(Value::Array(a))) | Node::Value(Value::Array(a)) => {
                    let v = a.get(index)?;
                    Some((Node::Value(v), v.span()))
                }
                _ => None,
            };
        }
        match self {
            Node::Item(Item::Table(t)) => table_child(t, part),
            Node::Table(t) => table_child(t, part),
            Node::Item(Item::Value(Value::InlineTable(t))) | Node::Value(Value::InlineTable(t)) => {
                let (k, v) = t.get_key_value(part)?;
                Some((item_node(v), k.span().or_else(|| v.span())))
            }
            _ => None,
        }
    }
}

fn item_node(item: &Item) -> Node<'_> {
    match item {
        Item::Value(v) => Node::Value(v),
        other => Node::Item(other),
    }
}

fn table_child<'a>(t: &'a Table, part: &str) -> Option<(Node<'a>, Option<Range<usize>>)> {
    let (k, v) = t.get_key_value(part)?;
    let span = k.span().or_else(|| v.span());
    Some((item_node(v), span))
}

/// The span of the deepest existing key on `path`, so a problem under a missing key still
/// points at its parent table.
fn span_of(root: &Table, path: &str) -> Option<Range<usize>> {
    let mut node = Node::Table(root);
    let mut best = None;
    for part in split_path(path) {
        let Some((next, span)) = node.child(&part) else {
            break;
        };
        best = span.or(best);
        node = next;
    }
    best
}

/// The key path of the deepest key whose value contains `offset`.
fn path_at(root: &Table, offset: usize) -> Option<String> {
    fn walk(item: &Item, offset: usize, path: String) -> String {
        match item {
            Item::Table(t) => walk_table(t, offset, path),
            Item::ArrayOfTables(a) => {
                for (i, t) in a.iter().enumerate() {
                    if t.span().is_some_and(|s| s.contains(&offset)) {
                        return walk_table(t, offset, format!("{path}[{i}]"));
                    }
                }
                path
            }
            Item::Value(v) => walk_value(v, offset, path),
            Item::None => path,
        }
    }
    fn walk_value(v: &Value, offset: usize, path: String) -> String {
        match v {
            Value::Array(a) => {
                for (i, e) in a.iter().enumerate() {
                    if e.span().is_some_and(|s| s.contains(&offset)) {
                        return walk_value(e, offset, format!("{path}[{i}]"));
                    }
                }
                path
            }
            Value::InlineTable(t) => {
                for (k, e) in t.iter() {
                    if e.span().is_some_and(|s| s.contains(&offset)) {
                        let p = deskgate_provider::config::join_path(&path, &quote_key(k));
                        return walk_value(e, offset, p);
                    }
                }
                path
            }
            _ => path,
        }
    }
    fn walk_table(t: &Table, offset: usize, path: String) -> String {
        for (k, item) in t.iter() {
            let p = deskgate_provider::config::join_path(&path, &quote_key(k));
            let key_hit = t.key(k).and_then(|k| k.span()).is_some_and(|s| s.contains(&offset));
            let inside = match item {
                Item::Table(t) => {
                    t.span().is_some_and(|s| s.contains(&offset)) || contains_deep(item, offset)
                }
                _ => contains_deep(item, offset),
            };
            if key_hit {
                return p;
            }
            if inside {
                return walk(item, offset, p);
            }
        }
        path
    }
    fn contains_deep(item: &Item, offset: usize) -> bool {
        match item {
            Item::Value(v) => v.span().is_some_and(|s| s.contains(&offset)),
            Item::Table(t) => {
                t.span().is_some_and(|s| s.contains(&offset))
                    || t.iter().any(|(_, i)| contains_deep(i, offset))
            }
            Item::ArrayOfTables(a) => a.iter().any(|t| {
                t.span().is_some_and(|s| s.contains(&offset))
                    || t.iter().any(|(_, i)| contains_deep(i, offset))
            }),
            Item::None => false,
        }
    }
    let p = walk_table(root, offset, String::new());
    (!p.is_empty()).then_some(p)
}
