//! [`http_get`]: a plain HTTP/1.1 GET, for asking a broker's admin endpoint things
//! ([`http_get_with`] with request headers, answering the response headers too), and
//! [`listed_group`]: one group as its `/groups` listing shows it; [`https_get_with`] over TLS.

use std::io::{Read, Write};
use std::net::SocketAddr;

use super::raw::tcp_connect;

/// A response: the status code, the headers (names in lower case, in order) and the body.
pub type HttpResponse = (u16, Vec<(String, String)>, String);

/// A `GET path` over plain HTTP/1.1 (one connection, `Connection: close`): the status code and
/// the body. Panics if the endpoint does not answer within 10 seconds.
pub fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let (status, _, body) = http_get_with(addr, path, &[]);
    (status, body)
}

/// A `GET path` with extra request `headers`: the status code, the response headers (names
/// in lower case, in order) and the body.
pub fn http_get_with(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> HttpResponse {
    let stream = tcp_connect(addr, "the admin endpoint");
    get_over(stream, addr, path, headers)
}

/// A `GET path` over HTTPS, trusting the CA certificates in the PEM file `ca`: as
/// [`http_get_with`], or why the TLS connection failed.
pub fn https_get_with(
    addr: SocketAddr,
    ca: &std::path::Path,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<HttpResponse, String> {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    #[allow(deprecated)]
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls_pki_types::ServerName::IpAddress(addr.ip().into());
    let session = rustls::ClientConnection::new(std::sync::Arc::new(config), name)
        .map_err(|e| e.to_string())?;
    let mut stream = rustls::StreamOwned::new(session, tcp_connect(addr, "the admin endpoint"));
    // Complete the handshake first, so a refused certificate is an error and not a panic.
    while stream.conn.is_handshaking() {
        stream
            .conn
            .complete_io(&mut stream.sock)
            .map_err(|e| e.to_string())?;
    }
    Ok(get_over(stream, addr, path, headers))
}

fn get_over(
    stream: impl Read + Write,
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> HttpResponse {
    request_over(stream, addr, "GET", path, headers, None)
}

/// A `POST path` of an HTML form: `fields` URL-encoded as the body, with extra request
/// `headers`; the status code, the response headers and the body.
pub fn http_post_form(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    fields: &[(&str, &str)],
) -> HttpResponse {
    let body: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("{}={}", form_encode(k), form_encode(v)))
        .collect();
    let stream = tcp_connect(addr, "the admin endpoint");
    request_over(stream, addr, "POST", path, headers, Some(&body.join("&")))
}

/// `application/x-www-form-urlencoded` encoding of one name or value.
fn form_encode(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                out.push(byte as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

fn request_over(
    mut stream: impl Read + Write,
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    form: Option<&str>,
) -> HttpResponse {
    let mut extra: String = headers
        .iter()
        .map(|(name, value)| format!("{name}: {value}\r\n"))
        .collect();
    if let Some(form) = form {
        extra.push_str(&format!(
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
            form.len()
        ));
    }
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{extra}Connection: close\r\n\r\n{}",
        form.unwrap_or("")
    );
    stream
        .write_all(request.as_bytes())
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    let mut raw = Vec::new();
    match stream.read_to_end(&mut raw) {
        Ok(_) => {}
        // A TLS peer may close without close_notify once the response is out.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => {}
        Err(e) => panic!("GET {path}: reading the response: {e}"),
    }
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("GET {path}: no end of headers in {raw:?}"));
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let body = &raw[split + 4..];
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("GET {path}: no status in {head:?}"));
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_vec()
    };
    let headers = head
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_string()))
        .collect();
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

/// The payload of a `Transfer-Encoding: chunked` body.
fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(line_end) = body.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&body[..line_end])
            .ok()
            .and_then(|s| usize::from_str_radix(s.split(';').next().unwrap_or("").trim(), 16).ok())
            .unwrap_or(0);
        let rest = &body[line_end + 2..];
        if size == 0 || rest.len() < size {
            break;
        }
        out.extend_from_slice(&rest[..size]);
        body = rest[size..].strip_prefix(b"\r\n").unwrap_or(&rest[size..]);
    }
    out
}

/// The group as the admin endpoint's `/groups` lists it.
pub fn listed_group(broker: &super::Broker, group: &str) -> serde_json::Value {
    let (status, body) = http_get(broker.admin_addr(), "/groups");
    assert_eq!(status, 200, "{body}");
    let groups: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap();
    groups
        .into_iter()
        .find(|g| g["group_id"] == group)
        .unwrap_or_else(|| panic!("{group} not listed: {body}"))
}
