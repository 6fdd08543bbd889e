//! The authentication target: what a client sends before the broker knows who it is — the
//! SASL mechanisms' messages (PLAIN, SCRAM-SHA-256/512), a TLS handshake, and on the way to a
//! principal the client certificate's subject and the `ssl.principal.mapping.rules` it goes
//! through.
//!
//! The first byte picks the path, the rest is its input:
//!
//! | byte % 6 | input |
//! | --- | --- |
//! | 0 | a SASL/PLAIN message, checked against a users file with one user |
//! | 1, 2 | SCRAM-SHA-256 / -512: the client-first message, a 0 byte, then the client-final one, through one server exchange (the user `user` exists) |
//! | 3 | mapping rules, a 0 byte, then a distinguished name: the rules parsed and applied |
//! | 4 | a DER certificate whose subject is written as Java writes it |
//! | 5 | bytes from a TLS client, fed to a rustls server session in pieces of up to 1 KiB |

use std::io::Read;
use std::sync::{Arc, OnceLock};

use starling_broker::sasl::plain::PlainUsers;
use starling_broker::sasl::scram::{
    credential_from_salted_password, ScramCredential, ScramMechanism, ScramServer, ScramStep,
};
use starling_broker::ssl_principal::{subject_name, MappingRules};

/// Runs one input; never panics on any bytes (the test and the fuzzers check that).
pub fn authentication(data: &[u8]) {
    let Some((&selector, input)) = data.split_first() else {
        return;
    };
    match selector % 6 {
        0 => {
            let _ = plain_users().authenticate(input);
        }
        1 => scram(ScramMechanism::Sha256, input),
        2 => scram(ScramMechanism::Sha512, input),
        3 => {
            let (rules, dn) = split_at_zero(input);
            if let Ok(rules) = MappingRules::parse(&String::from_utf8_lossy(rules)) {
                let _ = rules.apply(&String::from_utf8_lossy(dn));
            }
        }
        4 => {
            let _ = subject_name(input);
        }
        _ => tls(input),
    }
}

/// The input before the first 0 byte, and after it.
fn split_at_zero(input: &[u8]) -> (&[u8], &[u8]) {
    match input.iter().position(|&b| b == 0) {
        Some(i) => (&input[..i], &input[i + 1..]),
        None => (input, &[]),
    }
}

fn plain_users() -> &'static PlainUsers {
    static USERS: OnceLock<PlainUsers> = OnceLock::new();
    USERS.get_or_init(|| {
        let line = starling_broker::sasl::plain::users_file_line("carol", b"carol-secret", 10_000)
            .expect("a users-file line");
        PlainUsers::parse(&line).expect("the users file parses")
    })
}

/// The stored credential of `user` (password `pencil`, 4096 iterations) for `mechanism`.
pub fn scram_credential(mechanism: ScramMechanism) -> ScramCredential {
    let salt = b"fuzz-salt-16byte";
    let salted = mechanism.salted_password(b"pencil", salt, 4096);
    credential_from_salted_password(mechanism, salt, &salted, 4096)
}

fn scram(mechanism: ScramMechanism, input: &[u8]) {
    static CREDENTIALS: OnceLock<[ScramCredential; 2]> = OnceLock::new();
    let credentials = CREDENTIALS.get_or_init(|| {
        [
            scram_credential(ScramMechanism::Sha256),
            scram_credential(ScramMechanism::Sha512),
        ]
    });
    let credential = match mechanism {
        ScramMechanism::Sha256 => &credentials[0],
        ScramMechanism::Sha512 => &credentials[1],
    };
    let (first, last) = split_at_zero(input);
    let mut server = ScramServer::with_server_nonce(mechanism, "fuzznonce");
    let lookup = |user: &str| (user == "user").then(|| credential.clone());
    if let Ok(ScramStep::Challenge(_)) = server.evaluate(first, lookup) {
        let _ = server.evaluate(last, |_| None);
    }
}

/// A server configuration with a self-signed certificate for 127.0.0.1, made once.
pub fn tls_server_config() -> Arc<rustls::ServerConfig> {
    static CONFIG: OnceLock<Arc<rustls::ServerConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let key = rcgen::KeyPair::generate().expect("a key");
            let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
                .expect("params")
                .self_signed(&key)
                .expect("a certificate");
            #[allow(deprecated)]
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let config = rustls::ServerConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .expect("versions")
                .with_no_client_auth()
                .with_single_cert(
                    vec![cert.der().clone()],
                    rustls_pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
                )
                .expect("a server configuration");
            Arc::new(config)
        })
        .clone()
}

fn tls(input: &[u8]) {
    let Ok(mut session) = rustls::ServerConnection::new(tls_server_config()) else {
        return;
    };
    let mut rest = input;
    while !rest.is_empty() {
        let take = rest.len().min(1024);
        let mut piece = &rest[..take];
        rest = &rest[take..];
        while !piece.is_empty() {
            match session.read_tls(&mut piece) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            if session.process_new_packets().is_err() {
                return;
            }
        }
        // What the server would send back, and any application data, are drained as the
        // connection would.
        let mut sink = Vec::new();
        while session.wants_write() {
            if session.write_tls(&mut sink).is_err() {
                return;
            }
            sink.clear();
        }
        let mut plain = [0u8; 4096];
        while let Ok(n) = session.reader().read(&mut plain) {
            if n == 0 {
                break;
            }
        }
    }
}
