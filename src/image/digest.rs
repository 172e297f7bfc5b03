//! Readers that hash what passes through them, for checking blobs and
//! layers while they stream.
//!
//! SHA-256 runs on a thread of its own once a stream is longer than one
//! chunk, so the thread that decompresses a layer does not also hash it
//! (twice: the compressed blob and the uncompressed tar).
//!
//! [`HashedChunks`], the layer path: reads its source in chunks of
//! [`STREAM_CHUNK`] (1 MiB) that are shared, not copied, between the reader
//! and the hashing thread, over a channel bounded at [`STREAM_IN_FLIGHT`]
//! chunks; spent chunks come back to be filled again. Memory per hashed
//! stream is bounded by `(STREAM_IN_FLIGHT + 2) × STREAM_CHUNK` (queued,
//! being hashed, being read): 4 MiB, so 8 MiB per layer being read, plus
//! the decompressor's window. Forward seeks skip bytes without copying them
//! out (they are still read and hashed).
//!
//! [`HashingReader`], for small files and single entries: what is read is
//! copied into chunks of [`CHUNK`] bytes handed over a channel bounded at
//! [`IN_FLIGHT`] chunks: at most `(IN_FLIGHT + 2) × CHUNK`, 1.5 MiB.

use std::io::{self, BufRead, Read, Seek, SeekFrom};
use std::sync::Arc;
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

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

/// Bytes a [`HashedChunks`] reads at a time: the unit handed to its hashing
/// thread, shared rather than copied.
pub(crate) const STREAM_CHUNK: usize = 1 << 20;
/// Chunks of a [`HashedChunks`] queued for its hashing thread at most.
pub(crate) const STREAM_IN_FLIGHT: usize = 2;

/// A buffer of [`STREAM_CHUNK`] bytes, the first `len` of them filled.
pub(crate) struct Chunk {
    bytes: Box<[u8]>,
    len: usize,
}

impl Chunk {
    fn filled(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// SHA-256 of a stream that arrives in shared chunks: on the calling thread
/// while the stream fits in one chunk, then on a thread of its own, which
/// gives each chunk back once hashed so it is filled again.
struct ChunkHasher {
    /// The hash so far, until the thread takes it over.
    local: Option<Sha256>,
    pipe: Option<ChunkPipe>,
    count: u64,
}

struct ChunkPipe {
    to_hash: SyncSender<Arc<Chunk>>,
    spent: Receiver<Arc<Chunk>>,
    thread: JoinHandle<Sha256>,
}

impl ChunkHasher {
    fn new() -> Self {
        Self {
            local: Some(Sha256::new()),
            pipe: None,
            count: 0,
        }
    }

    /// An empty chunk to fill: one the hashing thread is done with, or a
    /// new one.
    fn buffer(&mut self) -> Chunk {
        if let Some(pipe) = &self.pipe {
            while let Ok(spent) = pipe.spent.try_recv() {
                if let Ok(mut chunk) = Arc::try_unwrap(spent) {
                    chunk.len = 0;
                    return chunk;
                }
            }
        }
        Chunk {
            bytes: vec![0; STREAM_CHUNK].into_boxed_slice(),
            len: 0,
        }
    }

    /// Hashes `chunk` after what came before and hands it back shared, to
    /// be read while it is hashed.
    fn submit(&mut self, chunk: Chunk) -> Arc<Chunk> {
        self.count += chunk.len as u64;
        let chunk = Arc::new(chunk);
        if self.pipe.is_none()
            && chunk.len < STREAM_CHUNK
            && let Some(local) = &mut self.local
        {
            // A stream that ends within its first chunk: not worth a thread.
            local.update(chunk.filled());
            return chunk;
        }
        let local = &mut self.local;
        let pipe = self.pipe.get_or_insert_with(|| {
            let mut hasher = local.take().unwrap_or_default();
            let (to_hash, queued) = sync_channel::<Arc<Chunk>>(STREAM_IN_FLIGHT);
            let (give_back, spent) = sync_channel::<Arc<Chunk>>(STREAM_IN_FLIGHT + 2);
            let thread = std::thread::spawn(move || {
                for chunk in queued {
                    hasher.update(chunk.filled());
                    // The reader may be gone or have chunks enough.
                    let _ = give_back.try_send(chunk);
                }
                hasher
            });
            ChunkPipe {
                to_hash,
                spent,
                thread,
            }
        });
        // A send fails only when the hashing thread panicked; `finish`
        // reports that panic.
        let _ = pipe.to_hash.send(Arc::clone(&chunk));
        chunk
    }

    fn finish(self) -> (Digest, u64) {
        let hasher = match self.pipe {
            None => self.local.unwrap_or_default(),
            Some(ChunkPipe {
                to_hash, thread, ..
            }) => {
                drop(to_hash);
                match thread.join() {
                    Ok(h) => h,
                    Err(panic) => std::panic::resume_unwind(panic),
                }
            }
        };
        let output: [u8; 32] = hasher.finalize().into();
        (Digest::from_sha256_output(&output), self.count)
    }
}

/// A buffered reader that hashes everything it reads from `inner`, in
/// chunks of [`STREAM_CHUNK`] bytes shared with a hashing thread rather than
/// copied for it: what is read from it is the very buffer being hashed.
/// Seeking forward skips bytes (they are still read and hashed, never
/// copied out), which lets the `tar` crate pass over file contents.
///
/// Memory: at most `STREAM_IN_FLIGHT + 2` chunks (queued, being hashed,
/// being read), 4 MiB.
pub(crate) struct HashedChunks<R> {
    inner: R,
    hasher: ChunkHasher,
    current: Option<Arc<Chunk>>,
    /// Read position in `current`.
    pos: usize,
    /// Bytes consumed by the reader, from the start of the stream.
    position: u64,
    eof: bool,
}

impl<R: Read> HashedChunks<R> {
    pub(crate) fn new(inner: R) -> Self {
        Self {
            inner,
            hasher: ChunkHasher::new(),
            current: None,
            pos: 0,
            position: 0,
            eof: false,
        }
    }

    /// Reads the next chunk from `inner`, as full as `inner` gives it.
    fn refill(&mut self) -> io::Result<()> {
        // Our share of the chunk read goes back before a new one is taken.
        self.current = None;
        self.pos = 0;
        let mut chunk = self.hasher.buffer();
        while chunk.len < STREAM_CHUNK {
            match self.inner.read(&mut chunk.bytes[chunk.len..]) {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                Ok(n) => chunk.len += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.current = Some(self.hasher.submit(chunk));
        Ok(())
    }

    /// Reads and hashes the rest of `inner`, copying nothing out.
    pub(crate) fn drain(&mut self) -> io::Result<()> {
        while !self.eof {
            self.refill()?;
        }
        Ok(())
    }

    /// The digest and count of what was read from `inner` so far, and
    /// `inner`.
    pub(crate) fn into_parts(mut self) -> (Digest, u64, R) {
        self.current = None;
        let (digest, count) = self.hasher.finish();
        (digest, count, self.inner)
    }

    pub(crate) fn get_ref(&self) -> &R {
        &self.inner
    }
}

impl<R: Read> BufRead for HashedChunks<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        let used = self.current.as_ref().is_none_or(|c| self.pos >= c.len);
        if used && !self.eof {
            self.refill()?;
        }
        Ok(self
            .current
            .as_ref()
            .map_or(&[][..], |c| &c.filled()[self.pos..]))
    }

    fn consume(&mut self, amt: usize) {
        self.pos += amt;
        self.position += amt as u64;
    }
}

impl<R: Read> Read for HashedChunks<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl<R: Read> Seek for HashedChunks<R> {
    /// Forward only, relative (`SeekFrom::Current`), as the `tar` crate
    /// skips; the bytes passed over are read and hashed all the same, and
    /// the end of the stream before the target is an error.
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        let mut left = match pos {
            SeekFrom::Current(delta) => u64::try_from(delta).map_err(|_| {
                io::Error::new(
                    io::ErrorKind::Unsupported,
                    "a hashed stream only seeks forward",
                )
            })?,
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    "a hashed stream only seeks relative to where it is",
                ));
            }
        };
        while left > 0 {
            let available = self.fill_buf()?.len();
            if available == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "unexpected EOF during skip",
                ));
            }
            let step = usize::try_from(left).unwrap_or(usize::MAX).min(available);
            self.consume(step);
            left -= step as u64;
        }
        Ok(self.position)
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
            let (digest, count) = reader.finish().unwrap();
            assert_eq!(count, len as u64);
            assert_eq!(digest, Digest::sha256_of(&bytes), "length {len}");
        }
    }

    /// Reads and forward seeks of every size, across chunk boundaries, give
    /// the stream's bytes at the right places; the digest and count are of
    /// the whole stream, what was skipped and the unread tail included.
    #[test]
    fn hashed_chunks_read_skip_and_hash_everything() {
        for len in [
            0,
            1,
            STREAM_CHUNK - 1,
            STREAM_CHUNK,
            STREAM_CHUNK + 1,
            3 * STREAM_CHUNK + 17,
            (STREAM_IN_FLIGHT + 5) * STREAM_CHUNK + 3,
        ] {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
            // A source that gives odd amounts, so chunks fill over reads.
            let source = io::BufReader::with_capacity(7919, io::Cursor::new(bytes.clone()));
            let mut stream = HashedChunks::new(source);
            let mut at = 0usize;
            let mut step = 1usize;
            let mut buf = vec![0u8; 3 * STREAM_CHUNK];
            while at < len / 2 {
                let want = step.min(len - at);
                let n = stream.read(&mut buf[..want]).unwrap();
                assert!(n > 0);
                assert_eq!(&buf[..n], &bytes[at..at + n], "length {len} at {at}");
                at += n;
                let skip = (step * 7).min(len - at);
                let pos = stream.seek(SeekFrom::Current(skip as i64)).unwrap();
                at += skip;
                assert_eq!(pos, at as u64);
                step = step * 3 + 1;
            }
            stream.drain().unwrap();
            let (digest, count, _) = stream.into_parts();
            assert_eq!(count, len as u64);
            assert_eq!(digest, Digest::sha256_of(&bytes), "length {len}");
        }
    }

    /// A skip past the end is an error, as reading past it would be, and
    /// seeking back or from an end is refused.
    #[test]
    fn hashed_chunks_skip_limits() {
        let mut stream = HashedChunks::new(&[7u8; 100][..]);
        let err = stream.seek(SeekFrom::Current(101)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        let mut stream = HashedChunks::new(&[7u8; 100][..]);
        assert_eq!(stream.seek(SeekFrom::Current(10)).unwrap(), 10);
        assert!(stream.seek(SeekFrom::Current(-1)).is_err());
        assert!(stream.seek(SeekFrom::Start(0)).is_err());
        assert_eq!(stream.seek(SeekFrom::Current(90)).unwrap(), 100);
        let (digest, count, _) = stream.into_parts();
        assert_eq!((digest, count), (Digest::sha256_of(&[7u8; 100]), 100));
    }
}
