//! HTTPS for the admin endpoint (`admin.ssl.enable`): an axum [`Listener`] whose connections
//! have completed a TLS handshake.
//!
//! Each accepted TCP connection gets a task of its own for the handshake (bounded by
//! `ssl.handshake.timeout.ms`), so a slow or silent client never holds up the others; finished
//! sessions queue for the server. The TLS material is a [`TlsListener`] like a Kafka
//! listener's, read from the `ssl.*` settings (`admin.ssl.*` overriding them) and reloaded with
//! theirs. A client certificate verified in the handshake travels with the connection's
//! [`Peer`] and names the caller (see [`super::auth`]).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::server::TlsStream;
use tokio_util::sync::CancellationToken;

use super::Peer;
use crate::tls::TlsListener;

/// How many finished handshakes may wait for the server to take them.
const QUEUED_SESSIONS: usize = 64;

/// TLS sessions on the admin endpoint's address.
pub struct HttpsListener {
    sessions: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl HttpsListener {
    /// Accepts on `tcp` until `shutdown`, shaking hands with `tls`.
    pub fn start(
        tcp: TcpListener,
        tls: Arc<TlsListener>,
        handshake_timeout: Duration,
        shutdown: CancellationToken,
    ) -> std::io::Result<HttpsListener> {
        let local = tcp.local_addr()?;
        let (tx, sessions) = mpsc::channel(QUEUED_SESSIONS);
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    accepted = tcp.accept() => accepted,
                };
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        tracing::warn!(error = %e, "admin endpoint: accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let acceptor = tls.acceptor();
                let tx = tx.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
                        Ok(Ok(session)) => {
                            let _ = tx.send((session, peer)).await;
                        }
                        Ok(Err(e)) => {
                            tracing::info!(%peer, error = %e, "admin endpoint: TLS handshake failed")
                        }
                        Err(_) => tracing::info!(
                            %peer,
                            "admin endpoint: TLS handshake not completed within ssl.handshake.timeout.ms"
                        ),
                    }
                });
            }
        });
        Ok(HttpsListener { sessions, local })
    }
}

impl Listener for HttpsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.sessions.recv().await {
            Some(session) => session,
            // The accept task stopped (shutdown): nothing more will come.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

impl Connected<IncomingStream<'_, HttpsListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, HttpsListener>) -> Self {
        // rustls keeps only a certificate it verified against the trust store.
        let certificate = stream
            .io()
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|chain| chain.first())
            .map(|leaf| Arc::new(leaf.clone().into_owned()));
        Peer {
            addr: *stream.remote_addr(),
            certificate,
        }
    }
}
