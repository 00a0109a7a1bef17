//! The server's layers, checked from its source: `main/cli → startup → web | dimse → domain → store →
//! support` (web and dimse, the HTTP and the DICOM doors, side by side: neither uses the other).
//! A module may use what is below it, never what is above; the web layer holds no SQL; no two modules
//! import each other, directly or round a longer cycle; handlers stay short; no SQL is built with
//! `format!`. Each rule fails with the files and lines that break it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Longest a handler in web/api may be, in lines (extract, one domain call, map the result).
const MAX_HANDLER_LINES: usize = 45;

struct Module {
    /// `domain::auth::users`; "" for lib.rs.
    path: String,
    file: PathBuf,
    source: String,
}

/// The server's source files; `MEDGEMMA_X_LAYERING_SRC` points the checks at another tree (an older
/// checkout, to see them fail).
fn modules() -> Vec<Module> {
    let src = std::env::var_os("MEDGEMMA_X_LAYERING_SRC")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    let mut out = Vec::new();
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let file = entry.unwrap().path();
            if file.is_dir() {
                stack.push(file);
                continue;
            }
            if file.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let relative = file.strip_prefix(&src).unwrap().with_extension("");
            let mut parts: Vec<String> = relative.iter().map(|p| p.to_string_lossy().into_owned()).collect();
            if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
                parts.pop();
            }
            let source = std::fs::read_to_string(&file).unwrap();
            out.push(Module { path: parts.join("::"), file, source });
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

/// The layer a module (or a path it names) belongs to: the binary's own modules (main.rs, cli/) are the
/// top; lib.rs and its items (VERSION) are the crate's root, which every layer may name.
fn layer(path: &str) -> &str {
    match path.split("::").next().unwrap_or_default() {
        top @ ("startup" | "web" | "dimse" | "domain" | "store" | "support") => top,
        "main" | "cli" => "cli",
        _ => "lib",
    }
}

/// Top to bottom; layers of one rank may not use each other.
const ORDER: [&[&str]; 6] = [&["cli"], &["startup"], &["web", "dimse"], &["domain"], &["store"], &["support"]];

fn rank(layer: &str) -> usize {
    ORDER.iter().position(|rank| rank.contains(&layer)).unwrap_or(usize::MAX)
}

/// The source without comments, so a doc line that names a module is not an import.
fn code_lines(source: &str) -> Vec<(usize, &str)> {
    source
        .lines()
        .enumerate()
        .map(|(i, line)| (i + 1, line.split("//").next().unwrap_or_default()))
        .filter(|(_, line)| !line.trim().is_empty())
        .collect()
}

/// Every `crate::a::b` path a module names (also inside `use crate::{a, b::c}` groups), and every
/// `super::x` resolved against the module's own path.
fn references(module: &Module) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (number, line) in code_lines(&module.source) {
        let mut rest = line;
        while let Some(at) = rest.find("crate::") {
            let tail = &rest[at + "crate::".len()..];
            if let Some(group) = tail.strip_prefix('{') {
                let inner = &group[..group.find('}').unwrap_or(group.len())];
                found.extend(inner.split(',').map(|p| (number, path_prefix(p.trim()))));
            } else {
                found.push((number, path_prefix(tail)));
            }
            rest = tail;
        }
        let mut rest = line;
        while let Some(at) = rest.find("super::") {
            let tail = &rest[at + "super::".len()..];
            // `super` of a.rs and of a/mod.rs alike is the module above `a` (inside a file's own
            // `mod tests`, it is the file itself: an ancestor either way, which uses ignore).
            let own: Vec<&str> = module.path.split("::").collect();
            let parent = own[..own.len().saturating_sub(1)].join("::");
            let target = path_prefix(tail);
            found.push((number, if parent.is_empty() { target } else { format!("{parent}::{target}") }));
            rest = tail;
        }
    }
    found
}

/// `a::b::C` of `a::b::C::new(...)`: the path's identifier segments.
fn path_prefix(s: &str) -> String {
    s.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
        .next()
        .unwrap_or_default()
        .trim_end_matches(':')
        .to_string()
}

/// The module a referenced path lands in: its longest prefix that is a module.
fn owner<'a>(reference: &str, known: &'a BTreeSet<String>) -> Option<&'a String> {
    let parts: Vec<&str> = reference.split("::").collect();
    (1..=parts.len()).rev().find_map(|n| known.get(&parts[..n].join("::")))
}

fn contains(outer: &str, inner: &str) -> bool {
    outer.is_empty() || inner == outer || inner.starts_with(&format!("{outer}::"))
}

/// Module → the modules it uses (a module's own ancestors and descendants are its containment, not uses).
fn graph(modules: &[Module]) -> BTreeMap<String, BTreeSet<String>> {
    let known: BTreeSet<String> = modules.iter().map(|m| m.path.clone()).collect();
    let mut edges = BTreeMap::new();
    for m in modules {
        let targets: BTreeSet<String> = references(m)
            .into_iter()
            .filter_map(|(_, r)| owner(&r, &known).cloned())
            .filter(|t| !contains(t, &m.path) && !contains(&m.path, t))
            .collect();
        edges.insert(m.path.clone(), targets);
    }
    edges
}

#[test]
fn each_layer_uses_only_the_layers_below_it() {
    let mut broken = Vec::new();
    for m in modules() {
        let from = layer(&m.path);
        for (line, reference) in references(&m) {
            let to = layer(&reference);
            if from != "lib" && to != "lib" && from != to && rank(to) <= rank(from) {
                broken.push(format!("{}:{line}: {from} uses {to} ({reference})", m.file.display()));
            }
        }
    }
    assert!(broken.is_empty(), "imports against the layers:\n{}", broken.join("\n"));
}

#[test]
fn http_stays_in_web_and_sql_stays_below_it() {
    let mut broken = Vec::new();
    for m in modules() {
        let l = layer(&m.path);
        for (line, code) in code_lines(&m.source) {
            let names = |word: &str| code.contains(&format!("{word}::")) || code.contains(&format!("use {word}"));
            if matches!(l, "domain" | "store" | "support") && (names("axum") || names("tower_http")) {
                broken.push(format!("{}:{line}: HTTP types below the web layer: {}", m.file.display(), code.trim()));
            }
            if matches!(l, "web" | "dimse") && names("sqlx") {
                broken.push(format!("{}:{line}: SQL in the {l} layer: {}", m.file.display(), code.trim()));
            }
        }
    }
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}

#[test]
fn no_two_modules_import_each_other_round_a_cycle() {
    let edges = graph(&modules());
    // Tarjan's strongly connected components: any component of more than one module is a cycle.
    struct Walk<'a> {
        edges: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        cycles: Vec<Vec<&'a str>>,
    }
    fn visit<'a>(w: &mut Walk<'a>, v: &'a str) {
        let n = w.index.len();
        w.index.insert(v, n);
        w.low.insert(v, n);
        w.stack.push(v);
        w.on_stack.insert(v);
        for t in &w.edges[v] {
            let t = t.as_str();
            if !w.index.contains_key(t) {
                visit(w, t);
                let low = w.low[v].min(w.low[t]);
                w.low.insert(v, low);
            } else if w.on_stack.contains(t) {
                let low = w.low[v].min(w.index[t]);
                w.low.insert(v, low);
            }
        }
        if w.low[v] == w.index[v] {
            let mut component = Vec::new();
            while let Some(t) = w.stack.pop() {
                w.on_stack.remove(t);
                component.push(t);
                if t == v {
                    break;
                }
            }
            if component.len() > 1 {
                w.cycles.push(component);
            }
        }
    }
    let mut walk = Walk {
        edges: &edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        cycles: Vec::new(),
    };
    for v in edges.keys() {
        if !walk.index.contains_key(v.as_str()) {
            visit(&mut walk, v);
        }
    }
    let described: Vec<String> = walk.cycles.iter().map(|c| c.join(" ↔ ")).collect();
    assert!(described.is_empty(), "modules in import cycles:\n{}", described.join("\n"));
    let uses: usize = edges.values().map(BTreeSet::len).sum();
    println!("{} modules, {uses} uses between them, no cycle", edges.len());
}

#[test]
fn handlers_are_short() {
    let mut long = Vec::new();
    for m in modules().into_iter().filter(|m| m.path.starts_with("web::api::")) {
        let lines: Vec<&str> = m.source.lines().collect();
        for (start, line) in lines.iter().enumerate() {
            if !line.starts_with("pub async fn ") {
                continue;
            }
            let end = (start..lines.len()).find(|&i| lines[i] == "}").unwrap_or(lines.len());
            let length = end - start + 1;
            if length > MAX_HANDLER_LINES {
                long.push(format!("{}:{}: {length} lines", m.file.display(), start + 1));
            }
        }
    }
    assert!(long.is_empty(), "handlers over {MAX_HANDLER_LINES} lines:\n{}", long.join("\n"));
}

#[test]
fn no_sql_is_built_with_format() {
    let mut built = Vec::new();
    for m in modules() {
        for (line, code) in code_lines(&m.source) {
            if ["query(&format!", "query_as(&format!", "query_scalar(&format!"].iter().any(|p| code.contains(p)) {
                built.push(format!("{}:{line}: {}", m.file.display(), code.trim()));
            }
        }
    }
    assert!(built.is_empty(), "SQL built with format!:\n{}", built.join("\n"));
}
