//! Readers that hash what passes through them, for checking blobs and
//! layers while they stream.
//!
//! SHA-256 runs on other threads than the one that decompresses a layer,
//! which does not also hash it (twice: the compressed blob and the
//! uncompressed tar).
//!
//! [`HashedChunks`], the layer path: reads its source in chunks of
//! [`STREAM_CHUNK`] (1 MiB) that are shared, not copied, between the reader
//! and the process's hashing threads (the [`Pool`], one per core), which
//! hash two streams' chunks at once where they can (a layer's blob and its
//! tar, or two layers'), faster on one core than one after the other. A
//! stream holds at most [`STREAM_IN_FLIGHT`] + 1 chunks queued or being
//! hashed, and its reader fills one more; spent chunks come back to be
//! filled again. Memory per hashed stream is bounded by
//! `(STREAM_IN_FLIGHT + 2) × STREAM_CHUNK`: 4 MiB, so 8 MiB per layer being
//! read, plus the decompressor's window. Forward seeks skip bytes without copying them
//! out (they are still read and hashed).
//!
//! [`HashingReader`], for small files and single entries: what is read is
//! copied into chunks of [`CHUNK`] bytes handed over a channel bounded at
//! [`IN_FLIGHT`] chunks: at most `(IN_FLIGHT + 2) × CHUNK`, 1.5 MiB.

use std::collections::VecDeque;
use std::io::{self, BufRead, Read, Seek, SeekFrom};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, sync_channel};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Once, OnceLock, PoisonError};
use std::thread::JoinHandle;

use sha2::{Digest as _, Sha256};

use super::sha256;
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
/// while the stream fits in one chunk, then by the [`pool`]'s threads,
/// which give each chunk back once hashed so it is filled again.
struct ChunkHasher {
    /// The hash so far, until the pool takes the stream over.
    local: Option<sha256::State>,
    stream: Option<Arc<Stream>>,
    count: u64,
}

impl ChunkHasher {
    fn new() -> Self {
        Self {
            local: Some(sha256::State::default()),
            stream: None,
            count: 0,
        }
    }

    /// An empty chunk to fill: one the pool is done with, or a new one.
    fn buffer(&mut self) -> Chunk {
        if let Some(stream) = &self.stream {
            let mut state = lock(&stream.state);
            while let Some(spent) = state.spent.pop() {
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
        if self.stream.is_none()
            && chunk.len < STREAM_CHUNK
            && let Some(local) = &mut self.local
        {
            // A stream that ends within its first chunk: not worth handing
            // over.
            local.update(chunk.filled());
            return chunk;
        }
        let local = &mut self.local;
        let stream = self
            .stream
            .get_or_insert_with(|| Stream::new(local.take().unwrap_or_default()));
        pool().submit(stream, Arc::clone(&chunk));
        chunk
    }

    fn finish(self) -> (Digest, u64) {
        let state = match self.stream {
            None => self.local.unwrap_or_default(),
            Some(stream) => stream.finish(),
        };
        (Digest::from_sha256_output(&state.finalize()), self.count)
    }
}

/// A stream's chunks waiting for the pool, and its hash so far.
struct Stream {
    state: Mutex<StreamState>,
    /// Signalled whenever a chunk of this stream was hashed.
    hashed: Condvar,
}

struct StreamState {
    /// Chunks submitted and not yet hashed, in order; the first may be
    /// being hashed.
    queue: VecDeque<Arc<Chunk>>,
    /// The hash so far; taken while a thread hashes the first chunk.
    hash: Option<sha256::State>,
    /// In the pool's ready queue, or being hashed.
    scheduled: bool,
    /// Hashed chunks, to be filled again.
    spent: Vec<Arc<Chunk>>,
    /// A hashing thread panicked on this stream.
    panicked: bool,
}

impl Stream {
    /// The hash so far and the first queued chunk, for a hashing thread.
    fn take(&self) -> (sha256::State, Arc<Chunk>) {
        let mut state = lock(&self.state);
        let chunk = state.queue.front().cloned();
        match (state.hash.take(), chunk) {
            (Some(hash), Some(chunk)) => (hash, chunk),
            // A stream is ready only with a chunk queued, and hashed by one
            // thread at a time.
            _ => unreachable!("a ready stream has its hash and a chunk"),
        }
    }

    fn new(hash: sha256::State) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(StreamState {
                queue: VecDeque::new(),
                hash: Some(hash),
                scheduled: false,
                spent: Vec::new(),
                panicked: false,
            }),
            hashed: Condvar::new(),
        })
    }

    /// Waits until every chunk submitted is hashed, and takes the hash.
    fn finish(&self) -> sha256::State {
        let mut state = lock(&self.state);
        while state.scheduled && !state.panicked {
            state = wait(&self.hashed, state);
        }
        match state.hash.take() {
            Some(hash) if !state.panicked => hash,
            _ => panic!("a thread hashing a layer stream panicked"),
        }
    }
}

/// The threads that hash layer streams, shared by every stream being read.
///
/// A stream (a layer's compressed blob, or its tar) queues its chunks
/// here. A hashing thread takes the streams that have chunks waiting two
/// at a time and hashes one chunk of each together
/// ([`sha256::update_pair`]), or one alone when no other stream waits; the
/// streams go back to the end of the queue while they have chunks left. A
/// stream is hashed by one thread at a time, its chunks in order, and holds
/// at most `STREAM_IN_FLIGHT + 1` queued chunks: its reader waits for the
/// hashing beyond that.
struct Pool {
    ready: Mutex<VecDeque<Arc<Stream>>>,
    wake: Condvar,
    /// Hashing threads running; with none (none could be started), chunks
    /// are hashed by the thread that submits them.
    threads: AtomicUsize,
}

/// Bytes the pool hashed, and of those, bytes hashed together with
/// another stream's (counted for each stream).
static POOL_BYTES: AtomicU64 = AtomicU64::new(0);
static PAIRED_BYTES: AtomicU64 = AtomicU64::new(0);

/// Bytes the hashing threads hashed in this process, and how many of them
/// were hashed two streams at once.
pub(crate) fn pool_hashed() -> (u64, u64) {
    (
        POOL_BYTES.load(Ordering::Relaxed),
        PAIRED_BYTES.load(Ordering::Relaxed),
    )
}

/// The process's hashing threads, started on first use: one per core.
fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    static STARTED: Once = Once::new();
    let pool = POOL.get_or_init(|| Pool {
        ready: Mutex::new(VecDeque::new()),
        wake: Condvar::new(),
        threads: AtomicUsize::new(0),
    });
    STARTED.call_once(|| {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        for i in 0..cores {
            let started = std::thread::Builder::new()
                .name(format!("imagelock-hash-{i}"))
                .spawn(move || pool.work());
            if started.is_ok() {
                pool.threads.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    pool
}

impl Pool {
    /// Queues `chunk` after the stream's earlier chunks, waiting while the
    /// stream has its fill queued.
    fn submit(&self, stream: &Arc<Stream>, chunk: Arc<Chunk>) {
        if self.threads.load(Ordering::Relaxed) == 0 {
            let mut state = lock(&stream.state);
            if let Some(hash) = &mut state.hash {
                hash.update(chunk.filled());
            }
            return;
        }
        let mut state = lock(&stream.state);
        while state.queue.len() > STREAM_IN_FLIGHT && !state.panicked {
            state = wait(&stream.hashed, state);
        }
        if state.panicked {
            // `finish` reports it.
            return;
        }
        state.queue.push_back(chunk);
        if !state.scheduled {
            state.scheduled = true;
            drop(state);
            self.ready(Arc::clone(stream));
        }
    }

    fn ready(&self, stream: Arc<Stream>) {
        lock(&self.ready).push_back(stream);
        self.wake.notify_one();
    }

    /// A hashing thread, for as long as the process runs: hashes the first
    /// chunk of the first two streams ready together, or of the one ready
    /// alone.
    fn work(&self) {
        loop {
            let (first, second) = {
                let mut ready = lock(&self.ready);
                loop {
                    if let Some(first) = ready.pop_front() {
                        break (first, ready.pop_front());
                    }
                    ready = wait(&self.wake, ready);
                }
            };
            let (hash, chunk) = first.take();
            POOL_BYTES.fetch_add(chunk.len as u64, Ordering::Relaxed);
            match second {
                None => {
                    let hashed = std::panic::catch_unwind(AssertUnwindSafe(move || {
                        let mut hash = hash;
                        hash.update(chunk.filled());
                        hash
                    }));
                    self.hashed(&first, hashed.ok());
                }
                Some(second) => {
                    let (other, other_chunk) = second.take();
                    POOL_BYTES.fetch_add(other_chunk.len as u64, Ordering::Relaxed);
                    let paired = chunk.len.min(other_chunk.len) / 64 * 64;
                    PAIRED_BYTES.fetch_add(2 * paired as u64, Ordering::Relaxed);
                    let hashed = std::panic::catch_unwind(AssertUnwindSafe(move || {
                        let (mut hash, mut other) = (hash, other);
                        sha256::update_pair(
                            &mut hash,
                            chunk.filled(),
                            &mut other,
                            other_chunk.filled(),
                        );
                        (hash, other)
                    }));
                    let (hash, other) = match hashed {
                        Ok((hash, other)) => (Some(hash), Some(other)),
                        Err(_) => (None, None),
                    };
                    self.hashed(&first, hash);
                    self.hashed(&second, other);
                }
            }
        }
    }

    /// Puts a stream's hash back after its first chunk was hashed (`None`:
    /// the hashing panicked), gives the chunk back to be filled again, and
    /// queues the stream again while it has more.
    fn hashed(&self, stream: &Arc<Stream>, hash: Option<sha256::State>) {
        let mut state = lock(&stream.state);
        if let Some(spent) = state.queue.pop_front()
            && state.spent.len() < STREAM_IN_FLIGHT + 2
        {
            state.spent.push(spent);
        }
        match hash {
            Some(hash) => state.hash = Some(hash),
            None => state.panicked = true,
        }
        let more = !state.queue.is_empty() && !state.panicked;
        state.scheduled = more;
        drop(state);
        stream.hashed.notify_all();
        if more {
            self.ready(Arc::clone(stream));
        }
    }
}

/// Locks `mutex`; a panic elsewhere while it was held leaves nothing half
/// done here (states are taken out while hashed), so poisoning is ignored.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn wait<'a, T>(condvar: &Condvar, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
    condvar.wait(guard).unwrap_or_else(PoisonError::into_inner)
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

    /// Streams read at once share the hashing threads: each still gets the
    /// digest of its own bytes, and where the CPU hashes two streams at
    /// once, chunks of different streams were hashed together.
    #[test]
    fn streams_read_at_once_keep_their_own_digests() {
        let before = PAIRED_BYTES.load(Ordering::Relaxed);
        std::thread::scope(|scope| {
            for seed in 0..4u8 {
                scope.spawn(move || {
                    let len = 6 * STREAM_CHUNK + usize::from(seed) * 4099;
                    let bytes: Vec<u8> = (0..len)
                        .map(|i| (i as u8).wrapping_mul(seed + 3) ^ (i >> 12) as u8)
                        .collect();
                    let mut stream = HashedChunks::new(&bytes[..]);
                    stream.drain().unwrap();
                    let (digest, count, _) = stream.into_parts();
                    assert_eq!(count, len as u64);
                    assert_eq!(digest, Digest::sha256_of(&bytes), "stream {seed}");
                });
            }
        });
        if sha256::pairs() {
            assert!(PAIRED_BYTES.load(Ordering::Relaxed) > before);
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
