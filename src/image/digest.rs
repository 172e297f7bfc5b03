//! A reader that hashes what passes through it, for checking blobs and
//! layers while they stream.
//!
//! SHA-256 runs on a thread of its own once a stream is longer than one
//! chunk, so the thread that decompresses a layer does not also hash it
//! (twice: the compressed blob and the uncompressed tar). What is read is
//! copied into chunks of [`CHUNK`] bytes handed over a channel bounded at
//! [`IN_FLIGHT`] chunks; spent chunks come back to be filled again. Memory
//! per hashed stream is bounded by `(IN_FLIGHT + 2) × CHUNK` (the chunks
//! queued, the one being filled and the one being hashed): 1.5 MiB, so
//! 3 MiB per layer being read.

use std::io::{self, Read};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, sync_channel};
use std::thread::JoinHandle;

use sha2::{Digest as _, Sha256};

use crate::oci::Digest;

/// Bytes handed to the hashing thread at a time.
pub(crate) const CHUNK: usize = 256 * 1024;
/// Chunks queued for the hashing thread at most.
pub(crate) const IN_FLIGHT: usize = 4;

/// SHA-256 of a stream, on the calling thread until the first chunk is
/// full, then on a thread of its own.
struct Hasher {
    /// Bytes not yet handed over.
    chunk: Vec<u8>,
    pipe: Option<Pipe>,
}

struct Pipe {
    to_hash: SyncSender<Vec<u8>>,
    spent: Receiver<Vec<u8>>,
    thread: JoinHandle<Sha256>,
}

impl Hasher {
    fn new() -> Self {
        Self {
            chunk: Vec::new(),
            pipe: None,
        }
    }

    fn update(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            if self.chunk.capacity() < CHUNK {
                self.chunk.reserve_exact(CHUNK - self.chunk.len());
            }
            let n = bytes.len().min(CHUNK - self.chunk.len());
            self.chunk.extend_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
            if self.chunk.len() == CHUNK {
                self.hand_over();
            }
        }
    }

    /// Hands the full chunk to the hashing thread (started now if need
    /// be) and takes a spent one, or a new one, to fill next.
    fn hand_over(&mut self) {
        let pipe = self.pipe.get_or_insert_with(|| {
            let (to_hash, queued) = sync_channel::<Vec<u8>>(IN_FLIGHT);
            let (give_back, spent) = sync_channel::<Vec<u8>>(IN_FLIGHT + 2);
            let thread = std::thread::spawn(move || {
                let mut hasher = Sha256::new();
                for mut chunk in queued {
                    hasher.update(&chunk);
                    chunk.clear();
                    // The reader may be gone or have chunks enough.
                    let _ = give_back.try_send(chunk);
                }
                hasher
            });
            Pipe {
                to_hash,
                spent,
                thread,
            }
        });
        let next = match pipe.spent.try_recv() {
            Ok(chunk) => chunk,
            Err(TryRecvError::Empty | TryRecvError::Disconnected) => Vec::with_capacity(CHUNK),
        };
        let full = std::mem::replace(&mut self.chunk, next);
        if let Err(e) = pipe.to_hash.send(full) {
            // The hashing thread ended early (it panicked): hash here, and
            // `finish` reports the panic.
            self.chunk = e.0;
        }
    }

    fn finish(self) -> [u8; 32] {
        let Hasher { chunk, pipe } = self;
        let mut hasher = match pipe {
            None => Sha256::new(),
            Some(Pipe {
                to_hash, thread, ..
            }) => {
                drop(to_hash);
                match thread.join() {
                    Ok(h) => h,
                    Err(panic) => std::panic::resume_unwind(panic),
                }
            }
        };
        hasher.update(&chunk);
        hasher.finalize().into()
    }
}

/// A reader that hashes and counts what passes through it.
pub(crate) struct HashingReader<R> {
    inner: R,
    hasher: Hasher,
    count: u64,
}

impl<R: Read> HashingReader<R> {
    pub(crate) fn new(inner: R) -> Self {
        Self {
            inner,
            hasher: Hasher::new(),
            count: 0,
        }
    }

    /// Bytes read so far.
    pub(crate) fn count(&self) -> u64 {
        self.count
    }

    /// Reads to the end and returns the digest of everything read and the
    /// byte count.
    pub(crate) fn finish(mut self) -> io::Result<(Digest, u64)> {
        io::copy(&mut self, &mut io::sink())?;
        Ok((
            Digest::from_sha256_output(&self.hasher.finish()),
            self.count,
        ))
    }
}

impl<R> HashingReader<R> {
    /// The digest and count of what was read so far, and the inner reader.
    pub(crate) fn into_parts(self) -> (Digest, u64, R) {
        (
            Digest::from_sha256_output(&self.hasher.finish()),
            self.count,
            self.inner,
        )
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whatever the stream's length against the chunk size, the digest is
    /// the one of all its bytes, in order.
    #[test]
    fn digests_match_one_pass_hashing() {
        for len in [
            0,
            1,
            CHUNK - 1,
            CHUNK,
            CHUNK + 1,
            3 * CHUNK + 17,
            (IN_FLIGHT + 5) * CHUNK,
        ] {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
            // Odd read sizes, so chunks fill across reads.
            let mut reader = HashingReader::new(io::BufReader::with_capacity(
                7919,
                io::Cursor::new(bytes.clone()),
            ));
            let mut sink = Vec::new();
            let mut buf = [0u8; 1000];
            loop {
                let n = reader.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                sink.extend_from_slice(&buf[..n]);
            }
            assert_eq!(sink, bytes);
            let (digest, count, _) = reader.into_parts();
            assert_eq!(count, len as u64);
            assert_eq!(digest, Digest::sha256_of(&bytes), "length {len}");
        }
    }
}
