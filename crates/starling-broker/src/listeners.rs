//! The listeners clients connect to, as Kafka configures them.
//!
//! `listeners=PLAINTEXT://:9092,SSL://:9093,SASL_SSL://:9094` names each listener and where it
//! binds; `listener.security.protocol.map` gives a listener name its security protocol (by
//! default each protocol's own name is a listener of that protocol); `advertised.listeners`
//! gives per listener name the address clients are told to use, the bound one when it names
//! none. A client is answered with the listener it connected to: Metadata, FindCoordinator and
//! DescribeCluster hand out that listener's advertised address, so clients inside and outside
//! a network each get the address they can reach.
//!
//! Settings can be given per listener with Kafka's `listener.name.<name>.` prefix: the `ssl.*`
//! keys, `sasl.enabled.mechanisms`. The `CONTROLLER` listener of a stock KRaft file is left
//! out with a warning: one Starling node has no controller quorum.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use crate::config::{resolve_address, BrokerConfig, ConfigError};
use crate::tls::{TlsListener, TlsSettings};

/// How a listener's connections are secured (Kafka's `security.protocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecurityProtocol {
    Plaintext,
    /// TLS; the client is `User:ANONYMOUS`, or its certificate's subject when it shows one.
    Ssl,
    /// SASL authentication on a plain TCP connection: a client must authenticate with one of
    /// the listener's SASL mechanisms before any request but ApiVersions.
    SaslPlaintext,
    /// SASL authentication inside TLS.
    SaslSsl,
}

impl SecurityProtocol {
    pub fn parse(name: &str) -> Option<SecurityProtocol> {
        match name.trim().to_ascii_uppercase().as_str() {
            "PLAINTEXT" => Some(SecurityProtocol::Plaintext),
            "SSL" => Some(SecurityProtocol::Ssl),
            "SASL_PLAINTEXT" => Some(SecurityProtocol::SaslPlaintext),
            "SASL_SSL" => Some(SecurityProtocol::SaslSsl),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::SaslSsl => "SASL_SSL",
        }
    }

    pub fn uses_tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }

    pub fn uses_sasl(self) -> bool {
        matches!(
            self,
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
        )
    }
}

/// One entry of `listeners`: a listener's name and the address it binds.
#[derive(Debug, Clone, PartialEq)]
pub struct ListenerAddress {
    pub name: String,
    pub addr: SocketAddr,
}

impl ListenerAddress {
    /// A `PLAINTEXT` listener on `addr`.
    pub fn plaintext(addr: SocketAddr) -> ListenerAddress {
        ListenerAddress {
            name: "PLAINTEXT".to_string(),
            addr,
        }
    }
}

/// Listener names that belong to a KRaft controller quorum, not to clients: a stock
/// `server.properties` lists one (`CONTROLLER://:9093`) next to the client listener.
pub const CONTROLLER_LISTENER: &str = "CONTROLLER";

fn invalid(key: &str, value: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::InvalidValue {
        key: key.into(),
        value: value.into(),
        reason: reason.into(),
    }
}

/// The client listeners of a `listeners` or `advertised.listeners` list (`NAME://host:port,...`)
/// as `(NAME, host:port)`, names upper-cased; the controller's is left out with a warning.
/// Refused: an entry that is not `NAME://host:port`, a name given twice, no client listener.
pub fn parse_listener_list(key: &str, value: &str) -> Result<Vec<(String, String)>, ConfigError> {
    let mut out: Vec<(String, String)> = Vec::new();
    for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (name, addr) = entry
            .split_once("://")
            .ok_or_else(|| invalid(key, value, "expected NAME://host:port"))?;
        let valid_name = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        let valid_port = addr
            .rsplit_once(':')
            .and_then(|(_, p)| p.parse::<u16>().ok())
            .is_some();
        if !valid_name || !valid_port {
            return Err(invalid(key, value, "expected NAME://host:port"));
        }
        let name = name.to_ascii_uppercase();
        if name == CONTROLLER_LISTENER {
            tracing::warn!(
                key,
                listener = entry,
                "listener has no effect on a single-node Starling broker (no controller quorum)"
            );
            continue;
        }
        if out.iter().any(|(n, _)| *n == name) {
            return Err(invalid(
                key,
                value,
                format!("listener name {name} appears more than once"),
            ));
        }
        out.push((name, addr.to_string()));
    }
    if out.is_empty() {
        return Err(invalid(key, value, "expected NAME://host:port for clients"));
    }
    Ok(out)
}

/// `listeners`, each address resolved; two listeners may not bind the same port (port 0 aside).
pub fn parse_listeners(key: &str, value: &str) -> Result<Vec<ListenerAddress>, ConfigError> {
    let mut out: Vec<ListenerAddress> = Vec::new();
    for (name, addr) in parse_listener_list(key, value)? {
        let addr = resolve_address(key, &addr)?;
        if addr.port() != 0 && out.iter().any(|l| l.addr.port() == addr.port()) {
            return Err(invalid(
                key,
                value,
                format!("two listeners on port {}", addr.port()),
            ));
        }
        out.push(ListenerAddress { name, addr });
    }
    Ok(out)
}

/// A bound listener as connections see it.
#[derive(Debug)]
pub struct Listener {
    pub name: String,
    pub protocol: SecurityProtocol,
    /// The address it is bound to (port 0 resolved).
    pub bound: SocketAddr,
    /// The host and port handed to its clients.
    pub advertised: (String, i32),
    /// The SASL mechanisms it offers (SASL listeners only).
    pub sasl_mechanisms: Vec<String>,
    /// Its `connections.max.reauth.ms` per SASL mechanism it offers (0: sessions do not
    /// expire).
    pub session_lifetimes_ms: BTreeMap<String, u64>,
    /// Its TLS configuration (TLS listeners only).
    pub tls: Option<Arc<TlsListener>>,
}

impl Listener {
    /// The listener `name` of `config`, bound to `bound`; its TLS material is loaded now.
    pub fn new(
        config: &BrokerConfig,
        name: &str,
        bound: SocketAddr,
    ) -> Result<Arc<Listener>, anyhow::Error> {
        let protocol = config.listener_protocol(name)?;
        let tls = if protocol.uses_tls() {
            let settings = TlsSettings::of(config, name, protocol)?;
            let tls =
                TlsListener::load(settings).map_err(|e| anyhow::anyhow!("listener {name}: {e}"))?;
            Some(Arc::new(tls))
        } else {
            None
        };
        Ok(Arc::new(Listener {
            name: name.to_string(),
            protocol,
            bound,
            advertised: config.advertised_for(name, bound),
            sasl_mechanisms: config.sasl_mechanisms_for(name),
            session_lifetimes_ms: session_lifetimes_ms(config, name),
            tls,
        }))
    }

    /// A `PLAINTEXT` listener on `bound` with no settings of its own (for [`crate::api::dispatch`]).
    pub fn plaintext(bound: SocketAddr) -> Arc<Listener> {
        Arc::new(Listener {
            name: "PLAINTEXT".to_string(),
            protocol: SecurityProtocol::Plaintext,
            bound,
            advertised: (bound.ip().to_string(), i32::from(bound.port())),
            sasl_mechanisms: Vec::new(),
            session_lifetimes_ms: BTreeMap::new(),
            tls: None,
        })
    }
}

/// `connections.max.reauth.ms` for each mechanism listener `name` offers.
pub fn session_lifetimes_ms(config: &BrokerConfig, name: &str) -> BTreeMap<String, u64> {
    config
        .sasl_mechanisms_for(name)
        .into_iter()
        .map(|m| {
            let ms = config.connections_max_reauth_ms_for(name, &m);
            (m, ms)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn several_listeners_keep_their_order_and_names_upper_cased() {
        let l = parse_listeners(
            "listeners",
            "plaintext://127.0.0.1:0, SSL://127.0.0.1:0,CONTROLLER://:9093,INTERNAL://[::1]:19094",
        )
        .unwrap();
        let names: Vec<&str> = l.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["PLAINTEXT", "SSL", "INTERNAL"]);
        assert_eq!(l[2].addr, "[::1]:19094".parse().unwrap());
    }

    #[test]
    fn a_name_twice_or_a_port_twice_is_refused() {
        let e = parse_listeners("listeners", "A://:9092,a://:9093").unwrap_err();
        assert!(e.to_string().contains("more than once"), "{e}");
        let e = parse_listeners("listeners", "A://:9092,B://127.0.0.1:9092").unwrap_err();
        assert!(e.to_string().contains("two listeners on port 9092"), "{e}");
        let e = parse_listeners("listeners", "A B://:9092").unwrap_err();
        assert!(e.to_string().contains("NAME://host:port"), "{e}");
    }

    #[test]
    fn security_protocols_by_name() {
        for p in [
            SecurityProtocol::Plaintext,
            SecurityProtocol::Ssl,
            SecurityProtocol::SaslPlaintext,
            SecurityProtocol::SaslSsl,
        ] {
            assert_eq!(SecurityProtocol::parse(p.name()), Some(p));
        }
        assert!(SecurityProtocol::SaslSsl.uses_tls() && SecurityProtocol::SaslSsl.uses_sasl());
        assert!(!SecurityProtocol::Ssl.uses_sasl());
        assert_eq!(SecurityProtocol::parse("TLS"), None);
    }
}
