//! The layer rule of `docs/ARCHITECTURE.md`, checked: each module of `server` may import only
//! the modules below it. A test reads every source file under `src/server` and fails on an
//! import that goes up or sideways, or on a module the table does not place.

/// The layers, lowest first; modules on one line stand beside each other and may not import
/// each other. `demo_erp`, `shutdown` and `limit` are self-contained.
pub const LAYERS: &[&[&str]] = &[
    &["lifecycle", "shutdown", "demo_erp", "limit", "metrics"],
    &["events"],
    &["store"],
    &["engine", "instance", "auth", "orders"],
    &["connectors"],
    &["catalog"],
    &["workflows"],
    &["schedules"],
    &["config"],
    &["state"],
    &["http"],
    &["startup", "bench", "telemetry", "layers", "remote"],
];

/// The layer of a module, `None` for one the table does not place.
pub fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// The server modules a source text names through `crate::server::…` or, from `depth`
    /// folders below `server`, through as many `super::`s plus one.
    fn imported(text: &str, depth: usize) -> Vec<String> {
        let mut names = Vec::new();
        let supers = "super::".repeat(depth + 1);
        for prefix in ["crate::server::".to_string(), supers] {
            let mut rest = text;
            while let Some(at) = rest.find(&prefix) {
                // `super::super::x` also contains `super::x`: only whole prefixes count.
                let before = &rest[..at];
                rest = &rest[at + prefix.len()..];
                if before.ends_with("super::") || before.ends_with("crate::server::") {
                    continue;
                }
                if let Some(group) = rest.strip_prefix('{') {
                    let mut depth = 1;
                    let mut end = 0;
                    for (i, c) in group.char_indices() {
                        match c {
                            '{' => depth += 1,
                            '}' => depth -= 1,
                            _ => {}
                        }
                        if depth == 0 {
                            end = i;
                            break;
                        }
                    }
                    let mut level = 0;
                    let mut item = String::new();
                    for c in group[..end].chars().chain(std::iter::once(',')) {
                        match c {
                            '{' => level += 1,
                            '}' => level -= 1,
                            ',' if level == 0 => {
                                let head: String = item
                                    .trim()
                                    .chars()
                                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                                    .collect();
                                if !head.is_empty() && head != "self" {
                                    names.push(head);
                                }
                                item.clear();
                                continue;
                            }
                            _ => {}
                        }
                        if level == 0 || c != '{' {
                            item.push(c);
                        }
                    }
                } else {
                    let head: String = rest
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    if !head.is_empty() {
                        names.push(head);
                    }
                }
            }
        }
        names
    }

    fn walk(dir: &Path, files: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, files);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }

    #[test]
    fn every_server_module_imports_only_the_layers_below_it() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/server");
        let mut files = Vec::new();
        walk(&root, &mut files);
        let mut wrong = Vec::new();
        for file in files {
            let relative = file.strip_prefix(&root).unwrap();
            let parts: Vec<_> = relative
                .iter()
                .map(|p| p.to_string_lossy().into_owned())
                .collect();
            if parts == ["mod.rs"] {
                continue;
            }
            let module = parts[0].trim_end_matches(".rs").to_string();
            let Some(own) = layer_of(&module) else {
                wrong.push(format!(
                    "src/server/{module} is in no layer of server::layers::LAYERS"
                ));
                continue;
            };
            // Files directly in server/ reach siblings with one `super::`; a file in a folder
            // (`engine/dispatch.rs`) with two; `engine/mod.rs` with one.
            let depth = match parts.len() {
                1 => 0,
                _ if parts.last().is_some_and(|p| p == "mod.rs") => parts.len() - 2,
                _ => parts.len() - 1,
            };
            let text = std::fs::read_to_string(&file).unwrap();
            for name in imported(&text, depth) {
                if name == module {
                    continue;
                }
                match layer_of(&name) {
                    Some(layer) if layer < own => {}
                    Some(_) => wrong.push(format!(
                        "{} imports `{name}`, which is not below `{module}`",
                        relative.display()
                    )),
                    // A type or a child module, not a server module.
                    None => {}
                }
            }
        }
        assert!(
            wrong.is_empty(),
            "the layer rule is broken:\n{}",
            wrong.join("\n")
        );
    }

    #[test]
    fn the_reader_finds_plain_grouped_and_nested_imports() {
        let text = "use crate::server::{store::Store, engine::{Engine, Origin}, self};\n\
                    use super::super::events::EventBus;\nlet x = crate::server::config::Config;";
        let mut found = imported(text, 1);
        found.sort();
        assert_eq!(found, ["config", "engine", "events", "store"]);
    }
}
