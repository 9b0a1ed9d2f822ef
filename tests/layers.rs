//! The layer table in docs/design.md is the truth about `src/`: every `crate::` path in a
//! layer's code (doc comments aside) names a layer the table lets it use, and every edge the
//! table lists is used. A new back-edge, or a table that describes an older tree, fails here.
//! `src/bin/` (the command line, a crate of its own) is not part of the library's layers.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// `layer -> layers it uses`, from the table between the `layers:` markers.
fn documented() -> BTreeMap<String, BTreeSet<String>> {
    let text = fs::read_to_string(Path::new(ROOT).join("docs/design.md")).unwrap();
    let start = text.find("<!-- layers: begin -->").expect("begin marker");
    let end = text.find("<!-- layers: end -->").expect("end marker");
    let names = |cell: &str| -> BTreeSet<String> {
        cell.split(',')
            .map(|n| n.trim().trim_matches('`').to_string())
            .filter(|n| !n.is_empty())
            .collect()
    };
    text[start..end]
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|row| {
            let cells: Vec<&str> = row.trim_matches('|').split('|').collect();
            assert_eq!(cells.len(), 2, "a layer row has two cells: {row}");
            let layer = names(cells[0]).into_iter().next().unwrap();
            (layer, names(cells[1]))
        })
        .collect()
}

/// The names `lib.rs` re-exports at the crate root, with the layer each comes from.
fn reexports() -> BTreeMap<String, String> {
    let lib = fs::read_to_string(Path::new(ROOT).join("src/lib.rs")).unwrap();
    let mut names = BTreeMap::new();
    for line in lib.lines().filter(|l| l.starts_with("pub use ")) {
        let path = line["pub use ".len()..].trim_end_matches(';');
        let layer = path.split("::").next().unwrap().to_string();
        let items = match path.find('{') {
            Some(at) => path[at + 1..].trim_end_matches('}').to_string(),
            None => path.rsplit("::").next().unwrap().to_string(),
        };
        for item in items.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            names.insert(item.to_string(), layer.clone());
        }
    }
    names
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The layers named by the `crate::` paths in `code` (`crate::x::…`, `crate::{A, b::C}`).
fn used_layers(
    code: &str,
    layers: &BTreeSet<String>,
    names: &BTreeMap<String, String>,
) -> Vec<String> {
    let mut used = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        let items: Vec<&str> = if let Some(group) = rest.strip_prefix('{') {
            group[..group.find('}').unwrap()].split(',').collect()
        } else {
            vec![rest]
        };
        for item in items {
            let first: String = item
                .trim()
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if layers.contains(&first) {
                used.push(first);
            } else if let Some(layer) = names.get(&first) {
                used.push(layer.clone());
            } else if !first.is_empty() {
                panic!("`crate::{first}` names neither a layer nor a re-export");
            }
        }
    }
    used
}

#[test]
fn the_documented_layers_are_the_use_lines() {
    let table = documented();
    let layers: BTreeSet<String> = table.keys().cloned().collect();
    let names = reexports();
    let src = Path::new(ROOT).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);

    let mut actual: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let relative = file.strip_prefix(&src).unwrap();
        let top = relative
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_str()
            .unwrap();
        let layer = top.trim_end_matches(".rs").to_string();
        if layer == "lib" {
            continue; // the crate root re-exports; it is no layer
        }
        if layer == "bin" {
            // The command line is its own crate: its `crate::` is itself, and it reaches the
            // library through the public API only (the compiler sees to that).
            continue;
        }
        assert!(
            layers.contains(&layer),
            "src/{top} is missing from docs/design.md's layer table"
        );
        let code: String = fs::read_to_string(&file)
            .unwrap()
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        let entry = actual.entry(layer.clone()).or_default();
        for used in used_layers(&code, &layers, &names) {
            if used != layer {
                entry.insert(used);
            }
        }
    }
    for (layer, documented) in &table {
        let used = actual.get(layer).cloned().unwrap_or_default();
        let undocumented: Vec<_> = used.difference(documented).collect();
        let unused: Vec<_> = documented.difference(&used).collect();
        assert!(
            undocumented.is_empty(),
            "`{layer}` uses {undocumented:?}, which docs/design.md's layer table does not allow"
        );
        assert!(
            unused.is_empty(),
            "docs/design.md says `{layer}` uses {unused:?}, but no `use` line does: update the table"
        );
    }
}
