//! The sans-IO layers stay sans-IO: `proto`, `store`, `mcp`, `transport` and `auth`
//! never name glommio, the shard runtime or a socket type. DESIGN.md section 1 states the rule;
//! this test is what keeps it.

use std::path::{Path, PathBuf};

/// What a sans-IO module must not name in code (comments may, to explain the rule).
const FORBIDDEN: &[&str] = &[
    "glommio",
    "crate::shard",
    "super::shard",
    "std::net::TcpStream",
    "std::net::TcpListener",
];

/// The layers that do no I/O.
const SANS_IO: &[&str] = &[
    "src/proto",
    "src/store",
    "src/mcp",
    "src/transport",
    "src/auth",
];

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

/// The line without its `//` comment (a string holding `//` is cut too: close enough for
/// names, which never follow one on the same line in this code base).
fn code_of(line: &str) -> &str {
    line.find("//").map_or(line, |at| &line[..at])
}

#[test]
fn sans_io_layers_name_no_runtime_and_no_socket() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for layer in SANS_IO {
        rust_files(&root.join(layer), &mut files);
    }
    assert!(
        files.len() > 20,
        "found only {} files: wrong root?",
        files.len()
    );
    let mut offences = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("readable source");
        for (number, line) in text.lines().enumerate() {
            let code = code_of(line);
            for name in FORBIDDEN.iter().filter(|name| code.contains(*name)) {
                offences.push(format!(
                    "{}:{}: names {name}",
                    file.strip_prefix(root).unwrap_or(file).display(),
                    number + 1
                ));
            }
        }
    }
    assert!(offences.is_empty(), "{}", offences.join("\n"));
}

#[test]
fn the_check_sees_a_runtime_name_in_code_but_not_in_comments() {
    assert!(code_of("use glommio::net::TcpStream;").contains("glommio"));
    assert!(!code_of("/// e.g. `glommio::timer::sleep`").contains("glommio"));
    assert!(!code_of("let x = 1; // not glommio").contains("glommio"));
}
