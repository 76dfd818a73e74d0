//! The JSON that ringmcp-load writes, as JSON Schema generated from its types and their doc
//! comments, so the documented format cannot drift from what is written:
//! `docs/schema/run-report.json` (a run's `--json`), `docs/schema/comparison.json`
//! (`compare --json`), and `docs/report-format.md`, a table of every field made from the two.
//! A test holds the committed files to what the types generate; after changing a type,
//! `RINGMCP_BLESS=1 cargo test -p loadtest schema` rewrites them.

use crate::compare::Comparison;
use crate::report::Report;
use serde_json::Value;
use std::fmt::Write as _;

/// The schema of a run's report.
pub fn run_report() -> Value {
    serde_json::to_value(schemars::schema_for!(Report)).unwrap_or_default()
}

/// The schema of a comparison.
pub fn comparison() -> Value {
    serde_json::to_value(schemars::schema_for!(Comparison)).unwrap_or_default()
}

/// `docs/report-format.md`: every field of both formats, with its type and description.
pub fn markdown() -> String {
    let mut out = String::from(
        "# The JSON of ringmcp-load\n\n\
         Generated from the types by `RINGMCP_BLESS=1 cargo test -p loadtest schema`; do not \
         edit by hand.\nThe JSON Schemas (2020-12) are `docs/schema/run-report.json` and \
         `docs/schema/comparison.json`.\n\
         Units are in the field names (`_ms`, `_s`, `_percent`, `bytes`) or their descriptions; \
         `schema_version` is raised when a field changes meaning or goes, not when one is added.\n",
    );
    for (title, schema) in [
        ("A run: `ringmcp-load --json FILE`", run_report()),
        (
            "A comparison: `ringmcp-load compare --json FILE`",
            comparison(),
        ),
    ] {
        let _ = write!(
            out,
            "\n## {title}\n\n| field | type | meaning |\n|---|---|---|\n"
        );
        let mut rows = Vec::new();
        fields(&schema, &schema, "", &mut rows);
        for (path, kind, meaning) in rows {
            let _ = writeln!(out, "| `{path}` | {kind} | {meaning} |");
        }
    }
    out
}

/// `schema` with a `$ref` into `root`'s `$defs` followed.
fn resolve<'a>(root: &'a Value, schema: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(reference) => reference
            .strip_prefix("#/$defs/")
            .and_then(|name| root.pointer(&format!("/$defs/{name}")))
            .unwrap_or(schema),
        None => schema,
    }
}

/// The schema an `Option` wraps (`anyOf` of it and null), or `schema` itself.
fn unwrap_nullable<'a>(root: &'a Value, schema: &'a Value) -> (&'a Value, bool) {
    if let Some(variants) = schema.get("anyOf").and_then(Value::as_array) {
        let not_null: Vec<&Value> = variants
            .iter()
            .filter(|v| v.get("type").and_then(Value::as_str) != Some("null"))
            .collect();
        if let [only] = not_null[..] {
            return (resolve(root, only), true);
        }
    }
    (resolve(root, schema), false)
}

/// A short type name for the table.
fn kind(root: &Value, schema: &Value) -> String {
    let (schema, nullable) = unwrap_nullable(root, schema);
    let mut name = if let Some(variants) = schema.get("oneOf").and_then(Value::as_array) {
        let names: Vec<String> = variants
            .iter()
            .filter_map(|v| v.get("const").and_then(Value::as_str))
            .map(|c| format!("`\"{c}\"`"))
            .collect();
        format!("one of {}", names.join(", "))
    } else {
        let types: Vec<&str> = match schema.get("type") {
            Some(Value::String(t)) => vec![t.as_str()],
            Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
            _ => vec!["any"],
        };
        let nullable_type = types.contains(&"null");
        let types: Vec<&str> = types.into_iter().filter(|t| *t != "null").collect();
        let mut name = types.join(" or ");
        if name == "array" {
            if let Some(items) = schema.get("prefixItems").and_then(Value::as_array) {
                let parts: Vec<String> = items.iter().map(|i| kind(root, i)).collect();
                name = format!("array of [{}]", parts.join(", "));
            } else if let Some(items) = schema.get("items") {
                name = format!("array of {}", kind(root, items));
            }
        }
        if nullable_type {
            name.push_str(" or null");
        }
        name
    };
    if nullable && !name.ends_with("or null") {
        name.push_str(" or null");
    }
    name
}

/// One line of a doc comment's text, safe in a table cell.
fn one_line(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace('|', "\\|")
}

/// Appends a row per field under `schema` (an object), its nested objects' fields after it.
fn fields(root: &Value, schema: &Value, prefix: &str, rows: &mut Vec<(String, String, String)>) {
    let (schema, _) = unwrap_nullable(root, schema);
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
        return;
    };
    for (name, property) in properties {
        let path = format!("{prefix}{name}");
        let meaning = property
            .get("description")
            .or_else(|| unwrap_nullable(root, property).0.get("description"))
            .and_then(Value::as_str)
            .map(one_line)
            .unwrap_or_default();
        rows.push((path.clone(), kind(root, property), meaning));
        let (inner, _) = unwrap_nullable(root, property);
        match inner.get("type").and_then(Value::as_str) {
            Some("array") => {
                if let Some(items) = inner.get("items") {
                    fields(root, items, &format!("{path}[]."), rows);
                }
            }
            _ => {
                fields(root, inner, &format!("{path}."), rows);
                if let Some(values) = inner.get("additionalProperties") {
                    fields(root, values, &format!("{path}.<key>."), rows);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    /// The committed file at `relative` (from the repository's root) equals `generated`;
    /// with RINGMCP_BLESS=1 it is rewritten instead.
    fn holds(relative: &str, generated: &str) {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(relative);
        if std::env::var_os("RINGMCP_BLESS").is_some() {
            std::fs::write(&path, generated).expect("write the generated file");
            return;
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == generated,
            "{relative} is not what the types generate: run RINGMCP_BLESS=1 cargo test -p loadtest schema"
        );
    }

    fn pretty(schema: &Value) -> String {
        serde_json::to_string_pretty(schema).expect("schema") + "\n"
    }

    #[test]
    fn the_committed_schemas_and_table_are_what_the_types_generate() {
        holds("docs/schema/run-report.json", &pretty(&run_report()));
        holds("docs/schema/comparison.json", &pretty(&comparison()));
        holds("docs/report-format.md", &markdown());
    }

    #[test]
    fn every_field_is_described() {
        let table = markdown();
        let undescribed: Vec<&str> = table
            .lines()
            .filter(|line| line.starts_with("| `") && line.ends_with("|  |"))
            .collect();
        assert!(
            undescribed.is_empty(),
            "fields without a description: {undescribed:?}"
        );
        for field in [
            "`schema_version`",
            "`latency.p99_ms`",
            "`latency_by_second[].errors`",
            "`metrics[].verdict`",
        ] {
            assert!(table.contains(field), "{field} is not in the table");
        }
    }
}
