//! The module graph of `src/`: imports between top-level modules only run
//! downward, so the tree can be read as layers (see the crate docs).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Every top-level module of `src/` and the top-level modules it names
/// through `crate::` paths (test modules left out).
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files: BTreeMap<String, Vec<std::path::PathBuf>> = BTreeMap::new();
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path.strip_prefix(&src).unwrap();
                let top = rel.iter().next().unwrap().to_string_lossy();
                let top = top.trim_end_matches(".rs").to_string();
                if top != "lib" && top != "main" {
                    files.entry(top).or_default().push(path.clone());
                }
            }
        }
    }
    let modules: BTreeSet<String> = files.keys().cloned().collect();
    let mut edges = BTreeMap::new();
    for (module, paths) in &files {
        let mut uses = BTreeSet::new();
        for path in paths {
            let text = std::fs::read_to_string(path).unwrap();
            let code = text.split("#[cfg(test)]").next().unwrap_or("");
            for (i, _) in code.match_indices("crate::") {
                let name: String = code[i + 7..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if name != *module && modules.contains(&name) {
                    uses.insert(name);
                }
            }
        }
        edges.insert(module.clone(), uses);
    }
    edges
}

/// A cycle through `from`, as the list of modules on it.
fn cycle_from(edges: &BTreeMap<String, BTreeSet<String>>, from: &str) -> Option<Vec<String>> {
    fn walk(
        edges: &BTreeMap<String, BTreeSet<String>>,
        node: &str,
        target: &str,
        path: &mut Vec<String>,
        seen: &mut BTreeSet<String>,
    ) -> bool {
        for next in &edges[node] {
            if next == target {
                return true;
            }
            if seen.insert(next.clone()) {
                path.push(next.clone());
                if walk(edges, next, target, path, seen) {
                    return true;
                }
                path.pop();
            }
        }
        false
    }
    let mut path = vec![from.to_string()];
    walk(edges, from, from, &mut path, &mut BTreeSet::new()).then_some(path)
}

#[test]
fn top_level_modules_import_only_downward() {
    let edges = graph();
    assert!(edges.len() >= 8, "too few modules found: {edges:?}");
    for module in edges.keys() {
        if let Some(cycle) = cycle_from(&edges, module) {
            let shown: Vec<String> = cycle
                .windows(2)
                .map(|w| format!("{} -> {}", w[0], w[1]))
                .chain(std::iter::once(format!(
                    "{} -> {}",
                    cycle.last().unwrap(),
                    module
                )))
                .collect();
            panic!(
                "an import cycle between top-level modules of src/: {}; move the helper down instead",
                shown.join(", ")
            );
        }
    }
    assert!(
        edges["util"].is_empty(),
        "util is the bottom layer, but imports {:?}",
        edges["util"]
    );
}
