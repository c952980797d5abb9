//! RFC 8785 (JSON Canonicalization Scheme) serialisation.
//!
//! Hashes and signatures are computed over these bytes, so two parties that
//! hold the same document always hash the same bytes, whatever their JSON
//! libraries do with key order or whitespace.
//!
//! Numbers: tapis documents carry integers only (times are RFC 3339 strings,
//! amounts are counts). Integers within ±2^53 serialise exactly as RFC 8785
//! requires; any other number is refused rather than risk a rendering that
//! differs from ECMAScript's.

use serde_json::Value;

use crate::{Error, Result};

/// The largest integer ECMAScript represents exactly.
const MAX_SAFE: u64 = (1 << 53) - 1;

/// Canonical bytes of `value`.
pub fn to_vec(value: &Value) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(256);
    write(value, &mut out)?;
    Ok(out)
}

/// Canonical text of `value`.
pub fn to_string(value: &Value) -> Result<String> {
    // canonical output is built from UTF-8 strings and ASCII only
    to_vec(value).map(|v| String::from_utf8(v).expect("canonical JSON is UTF-8"))
}

fn write(value: &Value, out: &mut Vec<u8>) -> Result<()> {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => {
            if let Some(u) = n.as_u64().filter(|u| *u <= MAX_SAFE) {
                out.extend_from_slice(u.to_string().as_bytes());
            } else if let Some(i) = n.as_i64().filter(|i| i.unsigned_abs() <= MAX_SAFE) {
                out.extend_from_slice(i.to_string().as_bytes());
            } else {
                return Err(Error::invalid(
                    "json",
                    format!(
                        "number {n} cannot be canonicalised: only integers within ±2^53 are allowed"
                    ),
                ));
            }
        }
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write(item, out)?;
            }
            out.push(b']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            // RFC 8785 §3.2.3: sort by UTF-16 code units, not by bytes
            keys.sort_by(|a, b| a.encode_utf16().cmp(b.encode_utf16()));
            out.push(b'{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(key, out);
                out.push(b':');
                write(&map[key], out)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

fn write_string(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\u{08}' => out.extend_from_slice(b"\\b"),
            '\u{0c}' => out.extend_from_slice(b"\\f"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            c if (c as u32) < 0x20 => {
                out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes());
            }
            c => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sorts_keys_by_utf16_and_drops_whitespace() {
        // RFC 8785 §3.2.3 example keys: sorted by UTF-16 code units
        let v = json!({"\u{20ac}": "Euro", "\r": "CR", "1": "One", "\u{1f600}": "smiley", "\u{0080}": "ctrl", "\u{00f6}": "o"});
        assert_eq!(
            to_string(&v).expect("canonical"),
            "{\"\\r\":\"CR\",\"1\":\"One\",\"\u{0080}\":\"ctrl\",\"\u{00f6}\":\"o\",\"\u{20ac}\":\"Euro\",\"\u{1f600}\":\"smiley\"}"
        );
    }

    #[test]
    fn escapes_controls_only() {
        let v = json!(["\u{1}\"\\/é\n"]);
        assert_eq!(
            to_string(&v).expect("canonical"),
            "[\"\\u0001\\\"\\\\/é\\n\"]"
        );
    }

    #[test]
    fn integers_exact_and_others_refused() {
        assert_eq!(
            to_string(&json!([0, -1, 9007199254740991i64])).expect("ok"),
            "[0,-1,9007199254740991]"
        );
        assert!(to_string(&json!(9007199254740992i64)).is_err());
        assert!(to_string(&json!(1.5)).is_err());
    }

    #[test]
    fn key_order_of_input_does_not_matter() {
        let a: Value =
            serde_json::from_str(r#"{"b":1,"a":{"y":2,"x":[true,null]}}"#).expect("json");
        let b: Value =
            serde_json::from_str(r#"{ "a" : { "x":[true, null], "y":2 }, "b":1 }"#).expect("json");
        assert_eq!(to_vec(&a).expect("ok"), to_vec(&b).expect("ok"));
    }
}
