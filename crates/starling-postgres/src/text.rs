//! Kafka's strings as PostgreSQL `text`, which cannot hold U+0000 (NUL) while a Kafka string
//! may: a member id, offset metadata, a transactional id, a user or resource name a client
//! sends. Such a string is stored [`escape`]d, in a key column or inside a stored JSON value
//! (`jsonb` cannot hold NUL either: [`escape_json`]), and read back [`unescape`]d.
//!
//! The escape keeps byte order, so keys still sort as the embedded store sorts them: U+0001
//! becomes U+0001 U+0002 and NUL becomes U+0001 U+0001, both still below every other
//! character, in the same order. A string with neither is stored as it is.

use std::borrow::Cow;

const NUL: char = '\u{0}';
const ESCAPE: char = '\u{1}';

/// `s` as a key column stores it.
pub fn escape(s: &str) -> Cow<'_, str> {
    if !s.contains([NUL, ESCAPE]) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 4);
    for c in s.chars() {
        match c {
            NUL => out.push_str("\u{1}\u{1}"),
            ESCAPE => out.push_str("\u{1}\u{2}"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// The string [`escape`] stored as `s`. (An escape character not followed by U+0001 or
/// U+0002, which `escape` never writes, is kept as it is.)
pub fn unescape(s: &str) -> Cow<'_, str> {
    if !s.contains(ESCAPE) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, chars.peek()) {
            (ESCAPE, Some('\u{1}')) => {
                chars.next();
                out.push(NUL);
            }
            (ESCAPE, Some('\u{2}')) => {
                chars.next();
                out.push(ESCAPE);
            }
            (c, _) => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Escapes every string of `value`, object keys included.
pub fn escape_json(value: &mut serde_json::Value) {
    map_strings(value, &|s| match escape(s) {
        Cow::Owned(escaped) => Some(escaped),
        Cow::Borrowed(_) => None,
    });
}

/// Undoes [`escape_json`].
pub fn unescape_json(value: &mut serde_json::Value) {
    map_strings(value, &|s| match unescape(s) {
        Cow::Owned(unescaped) => Some(unescaped),
        Cow::Borrowed(_) => None,
    });
}

/// Replaces each string of `value` (object keys included) for which `change` has a new one.
fn map_strings(value: &mut serde_json::Value, change: &dyn Fn(&str) -> Option<String>) {
    use serde_json::Value;
    match value {
        Value::String(s) => {
            if let Some(changed) = change(s) {
                *s = changed;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| map_strings(v, change)),
        Value::Object(map) => {
            if map.keys().any(|k| change(k).is_some()) {
                *map = std::mem::take(map)
                    .into_iter()
                    .map(|(k, v)| (change(&k).unwrap_or(k), v))
                    .collect();
            }
            map.values_mut().for_each(|v| map_strings(v, change));
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_string_without_nul_or_the_escape_is_stored_as_it_is() {
        assert!(matches!(
            escape("orders/é/🦀"),
            Cow::Borrowed("orders/é/🦀")
        ));
        assert!(matches!(unescape("orders"), Cow::Borrowed("orders")));
    }

    #[test]
    fn nul_and_the_escape_character_come_back() {
        for s in [
            "\0",
            "\u{1}",
            "a\0b\u{1}c",
            "\0\0\u{1}\u{1}",
            "\u{1}\u{2}",
            "end\0",
        ] {
            let stored = escape(s);
            assert!(!stored.contains('\0'), "{stored:?}");
            assert_eq!(unescape(&stored), s);
        }
    }

    #[test]
    fn every_string_of_a_json_value_comes_back_and_none_holds_nul() {
        let original = serde_json::json!({
            "member\u{0}id": ["a\u{0}", {"k\u{1}": "\u{1}\u{0}"}, 7, null],
            "plain": "text",
        });
        let mut stored = original.clone();
        escape_json(&mut stored);
        assert!(!stored.to_string().contains("\\u0000"), "{stored}");
        assert_eq!(stored["plain"], "text");
        unescape_json(&mut stored);
        assert_eq!(stored, original);
    }

    #[test]
    fn escaped_strings_sort_as_the_strings_do() {
        let strings = [
            "", "\0", "\0\0", "\0a", "\u{1}", "\u{1}\0", "\u{2}", "a", "a\0", "a\0b", "a\u{1}",
            "a\u{2}", "ab", "b",
        ];
        for a in strings {
            for b in strings {
                assert_eq!(
                    escape(a).as_bytes().cmp(escape(b).as_bytes()),
                    a.as_bytes().cmp(b.as_bytes()),
                    "{a:?} against {b:?}"
                );
            }
        }
    }
}
