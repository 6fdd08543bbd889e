//! The ceiling: raw TCP bandwidth over loopback on this machine.
//!
//! One sender and one receiver on 127.0.0.1 move the same number of bytes as the benchmark's
//! payload (at least 256 MiB) in 1 MiB writes and reads, with 4 MiB socket buffers. A Kafka
//! client talking to a broker on this host crosses exactly one such connection per message,
//! so no broker here can move payload faster than this.
//!
//! A second, informational figure: how fast this machine takes the same volume into the page
//! cache through plain `write(2)` of 1 MiB to a fresh file (no fsync, one pass, the file kept
//! until the end of the run), which is the least any broker that keeps its log in files has
//! to do per produced byte. On a VM whose free memory is handed back to the host, fresh pages
//! are expensive and this can be well below the loopback figure.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;

use crate::report::{progress_bar, Ceiling};

const CHUNK: usize = 1 << 20;
const SOCKET_BUFFER: u32 = 4 << 20;

/// Runs `rounds` transfers of `bytes` bytes each and keeps the fastest.
pub async fn measure(bytes: u64, rounds: u32) -> anyhow::Result<Ceiling> {
    let bar = progress_bar(bytes * u64::from(rounds), "loopback TCP", true);
    let mut best: Option<(u64, f64)> = None;
    for _ in 0..rounds {
        let (moved, secs) = transfer(bytes, &bar).await?;
        if best.is_none_or(|(b, s)| (moved as f64 / secs) > (b as f64 / s)) {
            best = Some((moved, secs));
        }
    }
    bar.finish_and_clear();
    let (moved, secs) = best.context("no loopback transfer ran")?;
    Ok(Ceiling {
        bytes: moved,
        seconds: secs,
        rounds,
    })
}

async fn transfer(bytes: u64, bar: &indicatif::ProgressBar) -> anyhow::Result<(u64, f64)> {
    let listen_socket = TcpSocket::new_v4()?;
    listen_socket.set_recv_buffer_size(SOCKET_BUFFER)?;
    listen_socket.bind("127.0.0.1:0".parse()?)?;
    let listener = listen_socket.listen(1)?;
    let addr = listener.local_addr()?;

    let receiver = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await?;
        let mut buf = vec![0u8; CHUNK];
        let mut total = 0u64;
        loop {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            total += n as u64;
        }
        Ok::<u64, std::io::Error>(total)
    });

    let socket = TcpSocket::new_v4()?;
    socket.set_send_buffer_size(SOCKET_BUFFER)?;
    let mut stream = socket
        .connect(addr)
        .await
        .context("connecting over loopback")?;
    stream.set_nodelay(true)?;
    // Not all zeros, in case anything on the path ever compresses.
    let chunk: Vec<u8> = (0..CHUNK)
        .map(|i| (i.wrapping_mul(31) ^ (i >> 7)) as u8)
        .collect();

    let start = Instant::now();
    let mut sent = 0u64;
    while sent < bytes {
        let n = (bytes - sent).min(CHUNK as u64) as usize;
        stream.write_all(&chunk[..n]).await?;
        sent += n as u64;
        bar.inc(n as u64);
    }
    stream.shutdown().await?;
    drop(stream);
    let received = receiver.await.context("joining the loopback receiver")??;
    let secs = start.elapsed().as_secs_f64();
    anyhow::ensure!(
        received == sent,
        "loopback receiver got {received} of {sent} bytes"
    );
    Ok((received, secs))
}

/// Writes `bytes` bytes in 1 MiB `write(2)` calls to a fresh file under `dir` (no fsync), once.
///
/// The file is handed back and should be kept until the client phases are done: a broker
/// keeps what it stores, so the produce phase must not run on pages this measurement freed.
pub fn page_cache_write(
    dir: &Path,
    bytes: u64,
) -> anyhow::Result<(Ceiling, tempfile::NamedTempFile)> {
    let bar = progress_bar(bytes, "page cache", true);
    let file = tempfile::Builder::new()
        .prefix("starling-bench-write-")
        .tempfile_in(dir)
        .with_context(|| format!("creating a scratch file in {}", dir.display()))?;
    let mut f = file.as_file();
    let chunk: Vec<u8> = (0..CHUNK)
        .map(|i| (i.wrapping_mul(131) ^ (i >> 9)) as u8)
        .collect();
    let start = Instant::now();
    let mut written = 0u64;
    while written < bytes {
        let n = (bytes - written).min(CHUNK as u64) as usize;
        f.write_all(&chunk[..n])?;
        written += n as u64;
        bar.inc(n as u64);
    }
    let secs = start.elapsed().as_secs_f64();
    bar.finish_and_clear();
    let ceiling = Ceiling {
        bytes: written,
        seconds: secs,
        rounds: 1,
    };
    Ok((ceiling, file))
}
