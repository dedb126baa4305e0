//! `tests/HARDENING.md` names, row by row, the tests that provoke each failure class: every
//! name must be a test that exists, so a renamed or deleted test cannot leave a row claiming
//! coverage it no longer has.

use std::path::Path;

/// `file.rs::test_name` references in the table: a path under `tests/` (or `src/...` given in
/// full) and a function name.
fn references(doc: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for line in doc.lines().filter(|l| l.starts_with("| ")) {
        for word in line.split(|c: char| c.is_whitespace() || c == '|' || c == '<' || c == '>') {
            let Some((file, name)) = word.split_once(".rs::") else {
                continue;
            };
            // A test in a nested module is named by its path (`model::the_test`).
            let path: String = name
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            let name = path.rsplit("::").next().unwrap_or_default().to_owned();
            let file = file.trim_start_matches(|c: char| !c.is_ascii_alphanumeric());
            if !name.is_empty() && !file.is_empty() {
                found.push((format!("{file}.rs"), name));
            }
        }
    }
    found
}

#[test]
fn every_test_the_hardening_table_names_exists() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc = std::fs::read_to_string(root.join("tests/HARDENING.md")).unwrap();
    let refs = references(&doc);
    assert!(
        refs.len() > 50,
        "the table was read: {} references",
        refs.len()
    );
    let mut missing = Vec::new();
    for (file, name) in &refs {
        let path = if file.starts_with("src/") {
            root.join(file)
        } else {
            root.join("tests").join(file)
        };
        let source = std::fs::read_to_string(&path).unwrap_or_default();
        if !source.contains(&format!("fn {name}(")) {
            missing.push(format!("{file}::{name}"));
        }
    }
    assert!(
        missing.is_empty(),
        "named in HARDENING.md but not found: {missing:#?}"
    );
}

#[test]
fn references_are_read_from_table_cells_and_html_breaks() {
    let refs = references(
        "| 1 | x | a.rs::one<br>src/b/c.rs::two | text about d.rs::three, |\nnot a row e.rs::four",
    );
    assert_eq!(
        refs,
        [
            ("a.rs".to_owned(), "one".to_owned()),
            ("src/b/c.rs".to_owned(), "two".to_owned()),
            ("d.rs".to_owned(), "three".to_owned()),
        ]
    );
}
