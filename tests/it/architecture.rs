//! The dependency rule of `docs/ARCHITECTURE.md`, checked against the code: every
//! `crate::` path in a module of `src/` points to a module of its own layer or a lower
//! one, and no two top-level modules reach each other through a chain of such paths. The
//! layers are read from the document's "Layers" section, so the two cannot drift apart.
//! Tests (`mod tests` at the end of a file), comments and `src/bin` are left out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// A `crate::` path: from a module to another, where.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Reference {
    from: String,
    to: String,
    at: String,
}

/// The layers of the "## Layers" section, lowest first: lines `N. `a`, `b` — why`.
fn layers(doc: &str) -> Vec<Vec<String>> {
    let Some(start) = doc.find("\n## Layers\n") else {
        return Vec::new();
    };
    let section = &doc[start + 1..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |i| i + 3)];
    let mut out = Vec::new();
    for line in section.lines() {
        let Some((number, rest)) = line.split_once(". ") else { continue };
        if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let names = rest.split(" — ").next().unwrap_or_default();
        let layer: Vec<String> = names.split('`').skip(1).step_by(2).map(str::to_owned).collect();
        out.push(layer);
    }
    out
}

/// The module a file of `src/` belongs to: its first path component, without `.rs`.
fn module_of(relative: &str) -> String {
    let first = relative.split('/').next().unwrap_or(relative);
    first.strip_suffix(".rs").unwrap_or(first).to_owned()
}

/// Names `lib.rs` re-exports (`pub use engine::{Engine, ...}`), by the module they come
/// from, so `crate::Engine` counts as a path into `engine`.
fn reexports(lib: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for statement in lib.split(';') {
        let statement = statement.trim();
        let Some(rest) = statement.strip_prefix("pub use ") else { continue };
        let Some((module, items)) = rest.split_once("::") else { continue };
        let items = items.trim_start_matches('{').trim_end_matches('}');
        for item in items.split(',') {
            let name = item.split_whitespace().last().unwrap_or_default();
            if !name.is_empty() {
                out.insert(name.to_owned(), module.to_owned());
            }
        }
    }
    // `lib.rs` declares `fs` as a facade over `io`.
    out.insert("fs".into(), "io".into());
    out
}

/// Every `crate::` path of `text` (a file of module `from`), by the module it names.
fn references(relative: &str, text: &str, modules: &BTreeSet<String>, exports: &BTreeMap<String, String>) -> Vec<Reference> {
    let from = module_of(relative);
    let mut out = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    // Code only: up to the test module, without comments, joined so that a `use` over
    // several lines reads as one.
    let mut code = String::new();
    let mut line_of = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if line.trim() == "#[cfg(test)]" && lines.get(i + 1).is_some_and(|next| next.trim_start().starts_with("mod tests")) {
            break;
        }
        let line = line.split("//").next().unwrap_or_default();
        code.push_str(line);
        code.push('\n');
        line_of.extend(std::iter::repeat_n(i + 1, line.len() + 1));
    }
    let resolve = |name: &str| -> Option<String> {
        if modules.contains(name) {
            Some(name.to_owned())
        } else {
            exports.get(name).cloned()
        }
    };
    let mut push = |name: &str, offset: usize| {
        if let Some(to) = resolve(name)
            && to != from
        {
            out.push(Reference {
                from: from.clone(),
                to,
                at: format!("src/{relative}:{}", line_of.get(offset).copied().unwrap_or(0)),
            });
        }
    };
    let mut search = 0;
    while let Some(found) = code[search..].find("crate::") {
        let at = search + found;
        let after = &code[at + "crate::".len()..];
        if let Some(group) = after.strip_prefix('{') {
            // `crate::{a::b, c}`: the first name of every item at the top level of the braces.
            let mut depth = 0;
            let mut item_start = 0;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => {
                        push(first_name(&group[item_start..i]), at);
                        break;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        push(first_name(&group[item_start..i]), at);
                        item_start = i + 1;
                    }
                    _ => {}
                }
            }
        } else {
            push(first_name(after), at);
        }
        search = at + "crate::".len();
    }
    out
}

fn first_name(path: &str) -> &str {
    let path = path.trim_start();
    let end = path.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(path.len());
    &path[..end]
}

/// What breaks the rule: modules in no layer, paths into a higher layer, and cycles.
fn violations(layers: &[Vec<String>], modules: &BTreeSet<String>, references: &[Reference]) -> Vec<String> {
    let mut out = Vec::new();
    let layer_of: BTreeMap<&str, usize> = layers
        .iter()
        .enumerate()
        .flat_map(|(i, names)| names.iter().map(move |n| (n.as_str(), i + 1)))
        .collect();
    for module in modules {
        if !layer_of.contains_key(module.as_str()) {
            out.push(format!("module `{module}` of src/ is in no layer of docs/ARCHITECTURE.md"));
        }
    }
    for name in layer_of.keys() {
        if !modules.contains(*name) {
            out.push(format!("docs/ARCHITECTURE.md lists `{name}`, which is no module of src/"));
        }
    }
    for r in references {
        if let (Some(&from), Some(&to)) = (layer_of.get(r.from.as_str()), layer_of.get(r.to.as_str()))
            && to > from
        {
            out.push(format!(
                "{}: `{}` (layer {from}) imports `{}` (layer {to}), a higher layer",
                r.at, r.from, r.to
            ));
        }
    }
    // Cycles: a module that reaches itself.
    let mut edges: BTreeMap<&str, BTreeMap<&str, &str>> = BTreeMap::new();
    for r in references {
        edges.entry(&r.from).or_default().entry(&r.to).or_insert(&r.at);
    }
    let mut reported = BTreeSet::new();
    for start in modules {
        if let Some(path) = path_back(&edges, start) {
            let members: BTreeSet<&str> = path.iter().map(|(m, _)| *m).collect();
            if reported.insert(members) {
                let chain: Vec<String> = path.iter().map(|(m, at)| format!("`{m}` ({at})")).collect();
                out.push(format!("cycle: {} -> `{start}`", chain.join(" -> ")));
            }
        }
    }
    out
}

/// A chain of edges from `start` back to itself, each with the place of its first path.
fn path_back<'a>(edges: &BTreeMap<&'a str, BTreeMap<&'a str, &'a str>>, start: &'a str) -> Option<Vec<(&'a str, &'a str)>> {
    let mut parent: BTreeMap<&str, (&str, &str)> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::from([start]);
    let mut seen = BTreeSet::from([start]);
    while let Some(module) = queue.pop_front() {
        for (&next, &at) in edges.get(module).into_iter().flatten() {
            if next == start {
                let mut path = vec![(module, at)];
                let mut at_module = module;
                while let Some(&(previous, previous_at)) = parent.get(at_module) {
                    path.push((previous, previous_at));
                    at_module = previous;
                }
                path.reverse();
                return Some(path);
            }
            if seen.insert(next) {
                parent.insert(next, (module, at));
                queue.push_back(next);
            }
        }
    }
    None
}

/// Every `.rs` file under `src/` but `lib.rs` and `src/bin/`, relative to `src/`.
fn sources(root: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let relative = path.strip_prefix(root).unwrap().to_string_lossy().replace('\\', "/");
            if path.is_dir() {
                if relative != "bin" {
                    dirs.push(path);
                }
            } else if relative.ends_with(".rs") && relative != "lib.rs" {
                out.push((relative, std::fs::read_to_string(&path).unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// The rule applied to `files` (relative to `src/`) with the layers of `doc`.
fn check(doc: &str, lib: &str, files: &[(String, String)]) -> Vec<String> {
    let modules: BTreeSet<String> = files.iter().map(|(p, _)| module_of(p)).collect();
    let exports = reexports(lib);
    let references: Vec<Reference> = files.iter().flat_map(|(p, text)| references(p, text, &modules, &exports)).collect();
    violations(&layers(doc), &modules, &references)
}

struct Tree {
    doc: String,
    lib: String,
    files: Vec<(String, String)>,
}

fn the_tree() -> Tree {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    Tree {
        doc: std::fs::read_to_string(root.join("docs/ARCHITECTURE.md")).unwrap(),
        lib: std::fs::read_to_string(root.join("src/lib.rs")).unwrap(),
        files: sources(&root.join("src")),
    }
}

#[test]
fn imports_point_down_or_sideways_and_modules_form_no_cycle() {
    let tree = the_tree();
    assert!(
        layers(&tree.doc).len() >= 5,
        "docs/ARCHITECTURE.md has no Layers section the check can read"
    );
    let found = check(&tree.doc, &tree.lib, &tree.files);
    assert!(
        found.is_empty(),
        "the dependency rule of docs/ARCHITECTURE.md is broken:\n{}",
        found.join("\n")
    );
}

#[test]
fn a_planted_upward_import_or_cycle_is_named_with_its_file_and_line() {
    let tree = the_tree();
    let plant = |file: &str, line: &str| -> Vec<(String, String)> {
        let mut files = tree.files.clone();
        let (_, text) = files.iter_mut().find(|(p, _)| p == file).unwrap();
        *text = format!("{line}\n{text}");
        files
    };
    // The manifest reaching up into the engine.
    let found = check(&tree.doc, &tree.lib, &plant("manifest.rs", "use crate::engine::Snapshot;"));
    assert!(
        found
            .iter()
            .any(|v| v.starts_with("src/manifest.rs:1: `manifest`") && v.contains("imports `engine`") && v.contains("a higher layer")),
        "{found:?}"
    );
    // Through a re-export of lib.rs, in a group, over several lines.
    let found = check(
        &tree.doc,
        &tree.lib,
        &plant("wal/record.rs", "use crate::{\n    error::Error,\n    Engine,\n};"),
    );
    assert!(
        found
            .iter()
            .any(|v| v.starts_with("src/wal/record.rs:1: `wal`") && v.contains("imports `engine`")),
        "{found:?}"
    );
    // Two modules of one layer that import each other.
    let found = check(&tree.doc, &tree.lib, &plant("scan.rs", "use crate::query::Query;"));
    assert!(
        found
            .iter()
            .any(|v| v.starts_with("cycle:") && v.contains("`scan`") && v.contains("`query`")),
        "{found:?}"
    );
    // Comments and tests do not count.
    let found = check(
        &tree.doc,
        &tree.lib,
        &plant("manifest.rs", "// see crate::engine::Snapshot\n/// and [`crate::Engine`]"),
    );
    assert!(found.is_empty(), "{found:?}");
    // A module the document does not place.
    let mut files = tree.files.clone();
    files.push(("brand_new.rs".into(), String::new()));
    let found = check(&tree.doc, &tree.lib, &files);
    assert!(found.iter().any(|v| v.contains("`brand_new` of src/ is in no layer")), "{found:?}");
}
