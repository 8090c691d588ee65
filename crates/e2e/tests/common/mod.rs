//! Helpers shared by the end-to-end suites that run `iservice` (each `tests/*.rs` file that
//! needs them says `mod common;`).

/// Every line of `text` as JSON, each checked against the JSON Schema `schema` (panics with
/// the line and the schema's complaints otherwise).
pub(crate) fn json_lines(schema: &str, text: &str) -> Vec<serde_json::Value> {
    let schema: serde_json::Value = serde_json::from_str(schema).expect("a JSON schema");
    let validator = jsonschema::validator_for(&schema).expect("a valid JSON schema");
    text.lines()
        .map(|line| {
            let value: serde_json::Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"));
            let errors: Vec<String> = validator
                .iter_errors(&value)
                .map(|e| e.to_string())
                .collect();
            assert!(errors.is_empty(), "{line}: {errors:?}");
            value
        })
        .collect()
}
