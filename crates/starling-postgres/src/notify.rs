//! Hearing what other nodes did: one `LISTEN` connection per node for the channels nodes
//! `NOTIFY` on — appends committed ([`crate::partition_log::APPENDED_CHANNEL`]), transaction
//! markers queued or carried out ([`crate::transactions::MARKERS_CHANNEL`]) and metadata
//! changed ([`crate::metadata::METADATA_CHANNEL`]). A notification is
//! delivered only when the transaction that sent it commits. The listener connects again by
//! itself after its connection is lost, and says so, since what was notified in between was
//! not heard.

use std::time::Duration;

use futures::StreamExt;
use tokio::sync::mpsc;
use tokio_postgres::AsyncMessage;
use uuid::Uuid;

use crate::metadata::{MetadataKind, METADATA_CHANNEL};
use crate::partition_log::{PartitionLogError, APPENDED_CHANNEL};
use crate::transactions::MARKERS_CHANNEL;

/// What a [`Listener`] hears.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// An append committed: (topic id, partition, next offset).
    Appended(Uuid, i32, i64),
    /// A transaction coordinator queued markers for the nodes leading their targets.
    MarkersQueued,
    /// A node carried out a queued marker.
    MarkersDone,
    /// A node changed metadata of this kind.
    MetadataChanged(MetadataKind),
    /// The listener lost its connection and has `LISTEN`ed again: what was notified in between
    /// was not heard, so whoever waits should look again.
    Reconnected,
}

/// How long a listener waits between attempts to connect again.
const RECONNECT_EVERY: Duration = Duration::from_millis(500);

/// One `LISTEN` connection delivering every notification (see the module docs). When the
/// connection is lost (the database restarted, say) it connects again by itself, and says so
/// with [`Event::Reconnected`].
pub struct Listener {
    events: mpsc::UnboundedReceiver<Event>,
    task: tokio::task::JoinHandle<()>,
}

impl Listener {
    /// Connects and `LISTEN`s; an error when the first connection fails.
    pub async fn connect(url: &str) -> Result<Listener, PartitionLogError> {
        let (tx, events) = mpsc::unbounded_channel();
        let first = listen(url, &tx).await?;
        let url = url.to_string();
        let task = tokio::spawn(async move {
            let mut connection = first;
            loop {
                if !forward(connection, &tx).await {
                    return;
                }
                connection = loop {
                    tokio::time::sleep(RECONNECT_EVERY).await;
                    match listen(&url, &tx).await {
                        Ok(connection) => break connection,
                        Err(e) => {
                            tracing::debug!(error = %e, "the append listener cannot connect yet")
                        }
                    }
                };
                if tx.send(Event::Reconnected).is_err() {
                    return;
                }
            }
        });
        Ok(Listener { events, task })
    }

    /// The next event, or `None` after `timeout`.
    pub async fn next(&mut self, timeout: Duration) -> Option<Event> {
        tokio::time::timeout(timeout, self.events.recv())
            .await
            .ok()
            .flatten()
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A connection that has `LISTEN`ed, and the client that keeps it open.
struct Listening {
    client: tokio_postgres::Client,
    connection:
        tokio_postgres::Connection<tokio_postgres::Socket, tokio_postgres::tls::NoTlsStream>,
}

/// Connects and `LISTEN`s; a notification that comes in before the LISTEN's answer has been
/// seen goes to `tx` at once.
async fn listen(
    url: &str,
    tx: &mpsc::UnboundedSender<Event>,
) -> Result<Listening, PartitionLogError> {
    let (client, mut connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    // The LISTEN is answered through the connection, which must be polled meanwhile.
    let (done_tx, mut done_rx) = tokio::sync::oneshot::channel();
    let listen = async {
        let result = client
            .batch_execute(&format!(
                "LISTEN {APPENDED_CHANNEL}; LISTEN {MARKERS_CHANNEL}; LISTEN {METADATA_CHANNEL}"
            ))
            .await;
        let _ = done_tx.send(());
        result
    };
    let drive = async {
        let mut messages = futures::stream::poll_fn(|cx| connection.poll_message(cx));
        loop {
            tokio::select! {
                _ = &mut done_rx => return Ok(()),
                message = messages.next() => match message {
                    Some(Ok(AsyncMessage::Notification(n))) => {
                        send(tx, n.channel(), n.payload());
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Err(e),
                    None => return Ok(()),
                },
            }
        }
    };
    let (listened, driven) = tokio::join!(listen, drive);
    listened?;
    driven?;
    Ok(Listening { client, connection })
}

/// Forwards the connection's notifications until it ends; false once nobody listens.
async fn forward(listening: Listening, tx: &mpsc::UnboundedSender<Event>) -> bool {
    let Listening {
        client: _client,
        mut connection,
    } = listening;
    let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
    while let Some(message) = messages.next().await {
        match message {
            Ok(AsyncMessage::Notification(n)) => {
                if !send(tx, n.channel(), n.payload()) {
                    return false;
                }
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "the append listener lost its connection; connecting again");
                return !tx.is_closed();
            }
        }
    }
    !tx.is_closed()
}

/// Hands on a notification; false once nobody listens.
fn send(tx: &mpsc::UnboundedSender<Event>, channel: &str, payload: &str) -> bool {
    let event = match channel {
        MARKERS_CHANNEL if payload == "done" => Some(Event::MarkersDone),
        MARKERS_CHANNEL => Some(Event::MarkersQueued),
        METADATA_CHANNEL => MetadataKind::parse(payload).map(Event::MetadataChanged),
        _ => parse_payload(payload)
            .map(|(topic_id, partition, next)| Event::Appended(topic_id, partition, next)),
    };
    match event {
        Some(event) => tx.send(event).is_ok(),
        None => !tx.is_closed(),
    }
}

fn parse_payload(payload: &str) -> Option<(Uuid, i32, i64)> {
    let mut parts = payload.split(':');
    let topic_id = parts.next()?.parse().ok()?;
    let partition = parts.next()?.parse().ok()?;
    let next = parts.next()?.parse().ok()?;
    Some((topic_id, partition, next))
}
