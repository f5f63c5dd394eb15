//! The top-level modules of `src/` are layered: when one names another, the other never
//! names it back, directly or through others. A cycle would mean neither can be read,
//! tested or changed on its own. The source is read at test time, so a new file is
//! checked without being listed anywhere.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// `from -> to`, with one file of `from` that names `to`.
type Edges = BTreeMap<(String, String), String>;

#[test]
fn modules_import_each_other_in_one_direction_only() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut edges = Edges::new();
    for file in &files {
        let rel = file.strip_prefix(&src).expect("under src");
        let parts: Vec<&str> = rel.iter().filter_map(|p| p.to_str()).collect();
        let top = parts[0].trim_end_matches(".rs");
        // The crate roots only declare modules (lib.rs) or belong to another crate (main.rs).
        if top == "lib" || top == "main" {
            continue;
        }
        // src/foo.rs and src/foo/mod.rs are `crate::foo`, one level below the root.
        let depth = parts.len() - usize::from(parts.last() == Some(&"mod.rs"));
        let text = std::fs::read_to_string(file).expect("readable source");
        for named in named_modules(&text, depth) {
            if named != top {
                edges.entry((top.to_owned(), named)).or_insert_with(|| rel.display().to_string());
            }
        }
    }
    assert!(edges.len() > 20, "the scan found too few imports to be reading src/");
    let cycles: Vec<String> = components(&edges)
        .into_iter()
        .filter(|c| c.len() > 1)
        .map(|c| {
            let lines: Vec<String> = edges
                .iter()
                .filter(|((a, b), _)| c.contains(a) && c.contains(b))
                .map(|((a, b), file)| format!("    {a} -> {b} (e.g. src/{file})"))
                .collect();
            format!("{{{}}}:\n{}", c.iter().cloned().collect::<Vec<_>>().join(", "), lines.join("\n"))
        })
        .collect();
    assert!(cycles.is_empty(), "modules of src/ that import each other:\n{}", cycles.join("\n"));
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> =
        std::fs::read_dir(dir).expect("readable dir").map(|e| e.expect("dir entry").path()).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code's words and punctuation, without comments, strings and characters.
fn tokens(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
        } else if c == '\'' && next == Some('\\') {
            // An escaped character ('\n', '\'', '\u{…}').
            i += 3;
            while i < chars.len() && chars[i] != '\'' {
                i += 1;
            }
            i += 1;
        } else if c == '\'' && chars.get(i + 2) == Some(&'\'') {
            // A character ('x'); a lifetime ('a) has no closing quote.
            i += 3;
        } else if c == ':' && next == Some(':') {
            out.push("::".to_owned());
            i += 2;
        } else if ident_char(Some(&c)) {
            let start = i;
            while ident_char(chars.get(i)) {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let hashes = chars[i..].iter().take_while(|&&h| h == '#').count();
            if matches!(word.as_str(), "r" | "br") && chars.get(i + hashes) == Some(&'"') {
                // A raw string, r"…" or r#"…"#: it ends at the quote with as many hashes.
                i += hashes + 1;
                while i < chars.len()
                    && !(chars[i] == '"'
                        && chars[i + 1..].iter().take(hashes).filter(|&&h| h == '#').count() == hashes)
                {
                    i += 1;
                }
                i += 1 + hashes;
            } else {
                out.push(word);
            }
        } else {
            if !c.is_whitespace() {
                out.push(c.to_string());
            }
            i += 1;
        }
    }
    out
}

fn ident_char(c: Option<&char>) -> bool {
    c.is_some_and(|c| c.is_alphanumeric() || *c == '_')
}

/// The top-level modules a file `depth` levels below the crate root names: `crate::a`,
/// each `a` of `crate::{a, b::c}`, and `super::a` where the `super`s climb to the root.
fn named_modules(text: &str, depth: usize) -> BTreeSet<String> {
    let t = tokens(text);
    let mut named = BTreeSet::new();
    // Brace depths at which inline `mod x { … }` blocks opened: each is one level deeper.
    let mut inline = Vec::new();
    let mut braces = 0usize;
    let mut i = 0;
    while i < t.len() {
        match t[i].as_str() {
            "{" => {
                if i >= 2 && t[i - 2] == "mod" {
                    inline.push(braces);
                }
                braces += 1;
            }
            "}" => {
                braces = braces.saturating_sub(1);
                if inline.last() == Some(&braces) {
                    inline.pop();
                }
            }
            "crate" if t.get(i + 1).is_some_and(|s| s == "::") => root_path(&t, i + 2, &mut named),
            "super" if i == 0 || t[i - 1] != "::" => {
                let mut climbs = 0;
                let mut j = i;
                while t.get(j).is_some_and(|s| s == "super") && t.get(j + 1).is_some_and(|s| s == "::") {
                    climbs += 1;
                    j += 2;
                }
                if climbs == depth + inline.len() {
                    root_path(&t, j, &mut named);
                }
            }
            _ => {}
        }
        i += 1;
    }
    named
}

/// Records the module (or the group's modules) at `t[at]`, right after `crate::`.
fn root_path(t: &[String], at: usize, named: &mut BTreeSet<String>) {
    let Some(first) = t.get(at) else { return };
    if first != "{" {
        if first != "self" && ident_char(first.chars().next().as_ref()) {
            named.insert(first.clone());
        }
        return;
    }
    let mut depth = 0;
    for (k, tok) in t.iter().enumerate().skip(at) {
        match tok.as_str() {
            "{" => depth += 1,
            "}" => {
                depth -= 1;
                if depth == 0 {
                    return;
                }
            }
            _ if depth == 1
                && matches!(t[k - 1].as_str(), "{" | ",")
                && tok != "self"
                && ident_char(tok.chars().next().as_ref()) =>
            {
                named.insert(tok.clone());
            }
            _ => {}
        }
    }
}

/// The strongly connected components of the graph (Tarjan).
fn components(edges: &Edges) -> Vec<BTreeSet<String>> {
    let mut next: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (a, b) in edges.keys() {
        next.entry(a).or_default().push(b);
        next.entry(b).or_default();
    }
    struct Walk<'a> {
        next: &'a BTreeMap<&'a str, Vec<&'a str>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        found: Vec<BTreeSet<String>>,
    }
    fn visit<'a>(w: &mut Walk<'a>, v: &'a str) {
        let n = w.index.len();
        w.index.insert(v, n);
        w.low.insert(v, n);
        w.stack.push(v);
        for &to in &w.next[v] {
            if !w.index.contains_key(to) {
                visit(w, to);
                let l = w.low[v].min(w.low[to]);
                w.low.insert(v, l);
            } else if w.stack.contains(&to) {
                let l = w.low[v].min(w.index[to]);
                w.low.insert(v, l);
            }
        }
        if w.low[v] == w.index[v] {
            let mut c = BTreeSet::new();
            while let Some(m) = w.stack.pop() {
                c.insert(m.to_owned());
                if m == v {
                    break;
                }
            }
            w.found.push(c);
        }
    }
    let mut w = Walk {
        next: &next,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        found: Vec::new(),
    };
    for &v in next.keys() {
        if !w.index.contains_key(v) {
            visit(&mut w, v);
        }
    }
    w.found
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

#[test]
fn paths_groups_and_climbing_supers_name_modules() {
    let text = "use crate::a::X;\nuse crate::{\n    b::{self, Y},\n    c,\n};\nfn f() { crate::d::g(); }\n\
                use super::e;\nmod tests { use super::*; use super::super::h; }";
    assert_eq!(named_modules(text, 1), set(&["a", "b", "c", "d", "e", "h"]));
    // Two levels down, one `super` stays inside the module.
    assert_eq!(named_modules("use super::e;", 2), set(&[]));
}

#[test]
fn comments_strings_and_characters_name_no_module() {
    let text = "// crate::a\n/* crate::b /* nested */ crate::c */\n/// [`crate::d`]\n\
                let s = \"crate::e \\\" crate::f\"; let r = r#\"crate::g\"#; let q = '\"';\n\
                fn k<'a>(x: &'a str) { crate::h::i(x) }\nlet e = '\\''; fn r#type() { crate::j::k() }";
    assert_eq!(named_modules(text, 1), set(&["h", "j"]));
}

#[test]
fn a_cycle_through_three_modules_is_one_component() {
    let edge = |a: &str, b: &str| ((a.to_owned(), b.to_owned()), String::new());
    let edges: Edges = [edge("a", "b"), edge("b", "c"), edge("c", "a"), edge("c", "d")].into_iter().collect();
    let mut found = components(&edges);
    found.sort();
    assert_eq!(found, vec![set(&["a", "b", "c"]), set(&["d"])]);
}
