//! The reader and writer tasks behind a connection.

use std::sync::{Arc, Weak};

use bytes::{BufMut, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::sync::mpsc;

use super::secure::{ReadHalf, WriteHalf};
use super::{poison, ConnError, Inner, Outgoing};
use crate::codec;

pub(super) async fn read_loop(read: ReadHalf, inner: Weak<Inner>, max: usize) {
    let mut read = BufReader::with_capacity(64 * 1024, read);
    loop {
        let result = read_frame(&mut read, max).await;
        let Some(inner) = inner.upgrade() else { return };
        let addr = || inner.addr.clone();
        let frame = match result {
            Ok(f) => f,
            Err(FrameError::Eof) => return poison(&inner, ConnError::Closed { addr: addr() }),
            Err(FrameError::Io(e)) => {
                if let Some(message) = super::tls::refusal(&e) {
                    return poison(
                        &inner,
                        ConnError::Authentication {
                            addr: addr(),
                            mechanism: "SSL",
                            message,
                        },
                    );
                }
                return poison(
                    &inner,
                    ConnError::Io {
                        addr: addr(),
                        source: Arc::new(e),
                    },
                );
            }
            Err(FrameError::TooLarge(size)) => {
                return poison(
                    &inner,
                    ConnError::FrameTooLarge {
                        addr: addr(),
                        size,
                        max,
                    },
                )
            }
        };
        let id = match codec::correlation_id(&frame) {
            Ok(id) => id,
            Err(e) => {
                return poison(
                    &inner,
                    ConnError::Codec {
                        addr: addr(),
                        source: e,
                    },
                )
            }
        };
        let reply = inner
            .state
            .lock()
            .ok()
            .and_then(|mut s| s.pending.remove(&id));
        match reply {
            Some(reply) => {
                let _ = reply.send(Ok(frame.freeze()));
            }
            // Either a broker bug or a response to a request we gave up on;
            // the stream can no longer be trusted.
            None => return poison(&inner, ConnError::UnknownCorrelation { addr: addr(), id }),
        }
    }
}

enum FrameError {
    Eof,
    Io(std::io::Error),
    TooLarge(i64),
}

async fn read_frame(read: &mut BufReader<ReadHalf>, max: usize) -> Result<BytesMut, FrameError> {
    let mut size = [0u8; 4];
    if let Err(e) = read.read_exact(&mut size).await {
        return Err(if e.kind() == std::io::ErrorKind::UnexpectedEof {
            FrameError::Eof
        } else {
            FrameError::Io(e)
        });
    }
    let size = i32::from_be_bytes(size) as i64;
    // Checked before allocating: a hostile prefix must not cost memory.
    if size < 4 || size as u64 > max as u64 {
        return Err(FrameError::TooLarge(size));
    }
    // Read into spare capacity: zeroing a large fetch response first cost
    // ~6 % of the consumer's CPU.
    let size = size as usize;
    let mut frame = BytesMut::with_capacity(size);
    while frame.len() < size {
        let want = size - frame.len();
        match read.read_buf(&mut (&mut frame).limit(want)).await {
            Ok(0) => return Err(FrameError::Eof),
            Ok(_) => {}
            Err(e) => return Err(FrameError::Io(e)),
        }
    }
    Ok(frame)
}

pub(super) async fn write_loop(
    write: WriteHalf,
    mut rx: mpsc::Receiver<Outgoing>,
    inner: Weak<Inner>,
) {
    let mut write = BufWriter::with_capacity(64 * 1024, write);
    while let Some(first) = rx.recv().await {
        // KIP-219: hold requests back while the broker throttles us.
        let wait = inner.upgrade().and_then(|i| i.throttle_left());
        if let Some(d) = wait {
            tokio::time::sleep(d).await;
        }
        let mut batch = vec![first];
        // Coalesce whatever is already queued into one flush.
        while batch.len() < 64 {
            match rx.try_recv() {
                Ok(o) => batch.push(o),
                Err(_) => break,
            }
        }
        let mut result = Ok(());
        for o in &batch {
            if let Err(e) = write.write_all(&o.frame).await {
                result = Err(e);
                break;
            }
        }
        if result.is_ok() {
            result = write.flush().await;
        }
        let outcome = match result {
            Ok(()) => Ok(()),
            Err(e) => {
                let Some(inner) = inner.upgrade() else { return };
                let err = ConnError::Io {
                    addr: inner.addr.clone(),
                    source: Arc::new(e),
                };
                poison(&inner, err.clone());
                Err(err)
            }
        };
        for o in batch {
            if let Some(w) = o.written {
                let _ = w.send(outcome.clone());
            }
            keep_spare(&inner, o.frame);
        }
        if outcome.is_err() {
            return;
        }
    }
}

/// Frames up to this size are reused (a full default produce request fits).
const SPARE_MAX: usize = 2 * 1024 * 1024;

/// Keeps a written frame's buffer for the next request, if nothing else holds it.
fn keep_spare(inner: &Weak<Inner>, frame: bytes::Bytes) {
    let Ok(buf) = frame.try_into_mut() else {
        return;
    };
    if buf.capacity() > SPARE_MAX {
        return;
    }
    if let Some(i) = inner.upgrade() {
        if let Ok(mut s) = i.spare.lock() {
            s.get_or_insert(buf);
        }
    }
}
