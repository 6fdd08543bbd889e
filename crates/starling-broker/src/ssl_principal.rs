//! Who a TLS client is: the principal Kafka derives from the client certificate's subject.
//!
//! Kafka names an `SSL` client `User:<name>`, where `<name>` is the certificate subject's
//! distinguished name as Java's `X500Principal.getName()` writes it (RFC 2253: the last RDN
//! first, `,` between RDNs, `+` inside a multi-valued one, the well-known attribute keywords
//! and `OID=#hex` for the rest, special characters escaped), passed through
//! `ssl.principal.mapping.rules`:
//!
//! ```text
//! RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/,RULE:^CN=(.*?),OU=(.*?),O=(.*?)$/$1@$2/L,DEFAULT
//! ```
//!
//! The first rule whose pattern matches the whole name turns it into its replacement (`$1`…
//! are the pattern's groups; a trailing `L` or `U` lower- or upper-cases the result);
//! `DEFAULT` keeps the name as it is. A name no rule matches is refused, and so is the
//! connection, as in Kafka.

use regex::Regex;
use x509_parser::der_parser::oid::Oid;
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::x509::AttributeTypeAndValue;

/// `ssl.principal.mapping.rules`, parsed.
#[derive(Debug, Clone)]
pub struct MappingRules {
    rules: Vec<Rule>,
}

#[derive(Debug, Clone)]
enum Rule {
    Default,
    Replace {
        pattern: Regex,
        replacement: String,
        case: Case,
    },
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Case {
    Keep,
    Lower,
    Upper,
}

impl MappingRules {
    /// Kafka's default: the distinguished name as it is.
    pub fn default_rules() -> MappingRules {
        MappingRules {
            rules: vec![Rule::Default],
        }
    }

    /// Parses a rules list (`RULE:pattern/replacement/[LU]` and `DEFAULT`, separated by
    /// commas; a pattern may hold commas, and `\/` for a slash).
    pub fn parse(text: &str) -> Result<MappingRules, String> {
        let mut rules = Vec::new();
        let mut rest = text.trim();
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix("DEFAULT") {
                rules.push(Rule::Default);
                rest = after;
            } else if let Some(after) = rest.strip_prefix("RULE:") {
                let (pattern, after) = until_unescaped_slash(after)
                    .ok_or_else(|| format!("a rule without its closing '/': RULE:{after}"))?;
                let (replacement, after) = until_unescaped_slash(after).ok_or_else(|| {
                    format!(
                        "a rule without the '/' that ends its replacement: RULE:{pattern}/{after}"
                    )
                })?;
                let (case, after) = match after.chars().next() {
                    Some('L') => (Case::Lower, &after[1..]),
                    Some('U') => (Case::Upper, &after[1..]),
                    _ => (Case::Keep, after),
                };
                let pattern = Regex::new(&format!("^(?:{pattern})$"))
                    .map_err(|e| format!("the pattern {pattern:?} does not compile: {e}"))?;
                rules.push(Rule::Replace {
                    pattern,
                    replacement: java_replacement(replacement),
                    case,
                });
                rest = after;
            } else {
                return Err(format!(
                    "expected RULE:pattern/replacement/[LU] or DEFAULT, found {rest:?}"
                ));
            }
            rest = rest.trim_start();
            match rest.strip_prefix(',') {
                Some(after) => rest = after.trim_start(),
                None if rest.is_empty() => {}
                None => return Err(format!("expected ',' between rules, found {rest:?}")),
            }
        }
        if rules.is_empty() {
            return Err("no rules".to_string());
        }
        Ok(MappingRules { rules })
    }

    /// The principal name for the distinguished name `dn`, or why none of the rules gives one.
    pub fn apply(&self, dn: &str) -> Result<String, String> {
        for rule in &self.rules {
            match rule {
                Rule::Default => return Ok(dn.to_string()),
                Rule::Replace {
                    pattern,
                    replacement,
                    case,
                } => {
                    let Some(captures) = pattern.captures(dn) else {
                        continue;
                    };
                    let mut name = String::new();
                    captures.expand(replacement, &mut name);
                    if name.is_empty() {
                        return Err(format!(
                            "ssl.principal.mapping.rules map {dn:?} to an empty name"
                        ));
                    }
                    return Ok(match case {
                        Case::Keep => name,
                        Case::Lower => name.to_lowercase(),
                        Case::Upper => name.to_uppercase(),
                    });
                }
            }
        }
        Err(format!(
            "no rule of ssl.principal.mapping.rules matches {dn:?}"
        ))
    }
}

/// The text up to the first `/` not escaped by a backslash, and what follows that slash.
fn until_unescaped_slash(text: &str) -> Option<(&str, &str)> {
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        match c {
            '\\' if !escaped => escaped = true,
            '/' if !escaped => return Some((&text[..i], &text[i + 1..])),
            _ => escaped = false,
        }
    }
    None
}

/// A Java replacement string (`$1`, `\$` for a dollar) in the regex crate's syntax (`${1}`,
/// `$$`), so `$1abc` stays group 1 followed by `abc`.
fn java_replacement(java: &str) -> String {
    let mut out = String::new();
    let mut chars = java.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('$') => out.push_str("$$"),
                Some(other) => out.push(other),
                None => out.push('\\'),
            },
            '$' if chars.peek().is_some_and(char::is_ascii_digit) => {
                let mut group = String::new();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    group.push(*d);
                    chars.next();
                }
                out.push_str(&format!("${{{group}}}"));
            }
            '$' => out.push_str("$$"),
            other => out.push(other),
        }
    }
    out
}

/// The subject of a DER certificate as Java's `X500Principal.getName()` (RFC 2253) writes it.
pub fn subject_name(certificate_der: &[u8]) -> Result<String, String> {
    let (_, certificate) = X509Certificate::from_der(certificate_der)
        .map_err(|e| format!("the client certificate does not parse: {e}"))?;
    let rdns: Vec<String> = certificate
        .subject()
        .iter()
        .map(|rdn| rdn.iter().map(attribute).collect::<Vec<_>>().join("+"))
        .collect();
    Ok(rdns.into_iter().rev().collect::<Vec<_>>().join(","))
}

/// The keywords RFC 2253 (and Java) print by name; any other attribute is its dotted OID.
const KEYWORDS: &[(&str, &str)] = &[
    ("2.5.4.3", "CN"),
    ("2.5.4.6", "C"),
    ("2.5.4.7", "L"),
    ("2.5.4.8", "ST"),
    ("2.5.4.10", "O"),
    ("2.5.4.11", "OU"),
    ("2.5.4.9", "STREET"),
    ("0.9.2342.19200300.100.1.25", "DC"),
    ("0.9.2342.19200300.100.1.1", "UID"),
];

fn attribute(atv: &AttributeTypeAndValue<'_>) -> String {
    let oid = oid_text(atv.attr_type());
    match KEYWORDS.iter().find(|(o, _)| *o == oid) {
        Some((_, keyword)) => match atv.as_str() {
            Ok(value) => format!("{keyword}={}", escape(value)),
            Err(_) => format!("{keyword}=#{}", hex(atv.attr_value())),
        },
        // Java writes attributes it has no keyword for as their DER value in hex.
        None => format!("{oid}=#{}", hex(atv.attr_value())),
    }
}

fn oid_text(oid: &Oid<'_>) -> String {
    oid.to_id_string()
}

/// The attribute value's whole DER encoding (tag, length, content) in lower-case hex.
fn hex(value: &x509_parser::der_parser::asn1_rs::Any<'_>) -> String {
    use x509_parser::der_parser::asn1_rs::ToDer;
    let der = value.to_der_vec().unwrap_or_default();
    der.iter().map(|b| format!("{b:02x}")).collect()
}

/// RFC 2253 escaping: `,+"\<>;` anywhere, `#` or a space at the start, a space at the end.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=')
            || (i == 0 && (c == '#' || c == ' '))
            || (i == last && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(text: &str) -> MappingRules {
        MappingRules::parse(text).unwrap()
    }

    #[test]
    fn the_default_rule_keeps_the_distinguished_name() {
        let dn = "CN=alice,OU=Eng,O=Acme,C=US";
        assert_eq!(MappingRules::default_rules().apply(dn).unwrap(), dn);
        assert_eq!(rules("DEFAULT").apply(dn).unwrap(), dn);
    }

    #[test]
    fn kafkas_documented_rules_map_as_kafka_maps_them() {
        // The examples from Kafka's documentation of ssl.principal.mapping.rules.
        let r = rules(
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/,RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L,RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/L,DEFAULT",
        );
        assert_eq!(
            r.apply("CN=serviceuser,OU=ServiceUsers,O=Unknown,L=Unknown,ST=Unknown,C=Unknown")
                .unwrap(),
            "serviceuser"
        );
        assert_eq!(
            r.apply("CN=adminUser,OU=Admin,O=Unknown,L=Unknown,ST=Unknown,C=Unknown")
                .unwrap(),
            "adminuser@admin"
        );
        assert_eq!(r.apply("OU=x,CN=Kafka.Client,O=y").unwrap(), "kafka.client");
        assert_eq!(r.apply("O=nobody").unwrap(), "O=nobody");
    }

    #[test]
    fn upper_casing_and_literal_text_after_a_group_are_kept_apart() {
        let r = rules("RULE:^CN=([^,]*).*$/$1x/U");
        assert_eq!(r.apply("CN=svc,O=a").unwrap(), "SVCX");
        let r = rules(r"RULE:^CN=([^,]*)$/\$$1/");
        assert_eq!(r.apply("CN=svc").unwrap(), "$svc");
    }

    #[test]
    fn a_name_no_rule_matches_is_refused() {
        let r = rules("RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/");
        let e = r.apply("CN=bob,OU=People").unwrap_err();
        assert!(e.contains("no rule"), "{e}");
    }

    #[test]
    fn escaped_slashes_belong_to_the_pattern() {
        let r = rules(r"RULE:^CN=a\/b(.*)$/x$1/");
        assert_eq!(r.apply("CN=a/b-c").unwrap(), "x-c");
    }

    #[test]
    fn malformed_rules_are_refused_with_what_is_wrong() {
        for (text, says) in [
            ("RULE:^CN=(.*)$", "closing '/'"),
            ("RULE:^CN=(.*)$/$1", "ends its replacement"),
            ("RULE:^CN=((.*)$/$1/", "does not compile"),
            ("SOMETHING", "expected RULE"),
            ("DEFAULT DEFAULT", "expected ','"),
            ("", "no rules"),
        ] {
            let e = MappingRules::parse(text).unwrap_err();
            assert!(e.contains(says), "{text}: {e}");
        }
    }

    #[test]
    fn a_certificate_subject_is_written_last_rdn_first_with_escapes() {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        let mut dn = rcgen::DistinguishedName::new();
        dn.push(rcgen::DnType::CountryName, "US");
        dn.push(rcgen::DnType::OrganizationName, "Acme, Inc.");
        dn.push(rcgen::DnType::OrganizationalUnitName, "Eng");
        dn.push(rcgen::DnType::CommonName, "alice");
        params.distinguished_name = dn;
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        assert_eq!(
            subject_name(cert.der()).unwrap(),
            r"CN=alice,OU=Eng,O=Acme\, Inc.,C=US"
        );
    }

    #[test]
    fn attributes_without_a_keyword_are_their_oid_and_der_in_hex() {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        let mut dn = rcgen::DistinguishedName::new();
        dn.push(rcgen::DnType::CommonName, "bob");
        // emailAddress, which Java prints as 1.2.840.113549.1.9.1=#16…
        dn.push(
            rcgen::DnType::CustomDnType(vec![1, 2, 840, 113549, 1, 9, 1]),
            rcgen::DnValue::Ia5String("b@x".try_into().unwrap()),
        );
        params.distinguished_name = dn;
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        assert_eq!(
            subject_name(cert.der()).unwrap(),
            "1.2.840.113549.1.9.1=#1603624078,CN=bob"
        );
    }

    #[test]
    fn rfc_2253_escaping() {
        assert_eq!(escape(" a,b+c "), r"\ a\,b\+c\ ");
        assert_eq!(escape("#x"), r"\#x");
        assert_eq!(escape("a#b"), "a#b");
        assert_eq!(escape(r#"q"<>;\"#), r#"q\"\<\>\;\\"#);
    }
}
