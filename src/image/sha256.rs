//! SHA-256 that can hash two independent streams at once.
//!
//! A single SHA-256 stream is one chain of dependent rounds: with the x86
//! SHA extensions each `sha256rnds2` waits on the one before, and the unit
//! idles between them. Two streams' rounds interleaved fill those gaps, so
//! one core hashes two streams faster than it hashes them one after the
//! other (1.3–1.5× here). Verify hashes every layer twice (its compressed
//! blob and its tar), so it always has two streams to pair.
//!
//! [`State`] is a plain SHA-256 state (one stream); [`update_pair`] feeds
//! two states at once. Single blocks go through `sha2`'s own compression
//! function; only the two-stream kernel is written here, because no
//! maintained crate offers one. Where the SHA extensions are missing, or on
//! other architectures, the pair is hashed one stream after the other with
//! `sha2`: same digests, no gain.
//!
//! The kernel is safe code under `#[target_feature]`; the one `unsafe` is
//! the call into it, made only after the CPU was seen to have the features.

use sha2::block_api::compress256;

const BLOCK: usize = 64;

/// The initial hash value (FIPS 180-4, 5.3.3).
const IV: [u32; 8] = [
    0x6a09_e667,
    0xbb67_ae85,
    0x3c6e_f372,
    0xa54f_f53a,
    0x510e_527f,
    0x9b05_688c,
    0x1f83_d9ab,
    0x5be0_cd19,
];

/// The SHA-256 of one stream so far.
#[derive(Clone)]
pub(crate) struct State {
    h: [u32; 8],
    /// Bytes of an unfinished block.
    pending: [u8; BLOCK],
    pending_len: usize,
    /// Bytes hashed, in all.
    len: u64,
}

impl Default for State {
    fn default() -> Self {
        Self {
            h: IV,
            pending: [0; BLOCK],
            pending_len: 0,
            len: 0,
        }
    }
}

impl State {
    pub(crate) fn update(&mut self, mut bytes: &[u8]) {
        self.len += bytes.len() as u64;
        if self.pending_len > 0 {
            let n = (BLOCK - self.pending_len).min(bytes.len());
            self.pending[self.pending_len..self.pending_len + n].copy_from_slice(&bytes[..n]);
            self.pending_len += n;
            bytes = &bytes[n..];
            if self.pending_len < BLOCK {
                return;
            }
            compress256(&mut self.h, &[self.pending]);
            self.pending_len = 0;
        }
        let (blocks, rest) = bytes.as_chunks::<BLOCK>();
        compress256(&mut self.h, blocks);
        self.pending[..rest.len()].copy_from_slice(rest);
        self.pending_len = rest.len();
    }

    /// The digest: the padding (FIPS 180-4, 5.1.1) hashed after the stream.
    pub(crate) fn finalize(mut self) -> [u8; 32] {
        let bits = self.len.wrapping_mul(8);
        let mut tail = [0u8; 2 * BLOCK];
        tail[..self.pending_len].copy_from_slice(&self.pending[..self.pending_len]);
        tail[self.pending_len] = 0x80;
        let end = if self.pending_len < BLOCK - 8 {
            BLOCK
        } else {
            2 * BLOCK
        };
        tail[end - 8..end].copy_from_slice(&bits.to_be_bytes());
        let (blocks, _) = tail[..end].as_chunks::<BLOCK>();
        compress256(&mut self.h, blocks);
        let mut out = [0u8; 32];
        for (word, bytes) in self.h.iter().zip(out.chunks_exact_mut(4)) {
            bytes.copy_from_slice(&word.to_be_bytes());
        }
        out
    }
}

/// Hashes `a` into `sa` and `b` into `sb`, the blocks both have whole
/// interleaved on one core where the CPU allows it.
pub(crate) fn update_pair(sa: &mut State, a: &[u8], sb: &mut State, b: &[u8]) {
    if sa.pending_len != 0 || sb.pending_len != 0 {
        // Only the last, short chunk of a stream leaves a block unfinished.
        sa.update(a);
        sb.update(b);
        return;
    }
    let n = a.len().min(b.len()) / BLOCK * BLOCK;
    let (a_blocks, _) = a[..n].as_chunks::<BLOCK>();
    let (b_blocks, _) = b[..n].as_chunks::<BLOCK>();
    if !compress_pair(&mut sa.h, a_blocks, &mut sb.h, b_blocks) {
        compress256(&mut sa.h, a_blocks);
        compress256(&mut sb.h, b_blocks);
    }
    sa.len += n as u64;
    sb.len += n as u64;
    sa.update(&a[n..]);
    sb.update(&b[n..]);
}

/// Whether this CPU runs the two-stream kernel (detected once).
pub(crate) fn pairs() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        static DETECTED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *DETECTED.get_or_init(|| {
            std::arch::is_x86_feature_detected!("sha")
                && std::arch::is_x86_feature_detected!("sse2")
                && std::arch::is_x86_feature_detected!("ssse3")
                && std::arch::is_x86_feature_detected!("sse4.1")
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Compresses equal numbers of blocks into two states at once; `false`
/// when the CPU cannot (nothing was done).
fn compress_pair(
    sa: &mut [u32; 8],
    a: &[[u8; BLOCK]],
    sb: &mut [u32; 8],
    b: &[[u8; BLOCK]],
) -> bool {
    #[cfg(target_arch = "x86_64")]
    if pairs() {
        #[allow(unsafe_code)]
        // SAFETY: `pairs` saw every feature `x86::compress_pair` enables on
        // this CPU; the function itself is safe code.
        unsafe {
            x86::compress_pair(sa, a, sb, b);
        }
        return true;
    }
    let _ = (sa, a, sb, b);
    false
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    //! Two SHA-256 streams on the x86 SHA extensions, their rounds
    //! interleaved. The state is kept as the extensions want it (ABEF and
    //! CDGH), the message schedule as four vectors of four words
    //! (FIPS 180-4, 6.2.2, with `sha256msg1`/`sha256msg2` for the
    //! recurrence).

    use std::arch::x86_64::{
        __m128i, _mm_add_epi32, _mm_alignr_epi8, _mm_blend_epi16, _mm_extract_epi32, _mm_set_epi32,
        _mm_sha256msg1_epu32, _mm_sha256msg2_epu32, _mm_sha256rnds2_epu32, _mm_shuffle_epi32,
    };

    use super::BLOCK;

    /// The round constants (FIPS 180-4, 4.2.2), four per vector.
    const K: [[u32; 4]; 16] = [
        [0x428a_2f98, 0x7137_4491, 0xb5c0_fbcf, 0xe9b5_dba5],
        [0x3956_c25b, 0x59f1_11f1, 0x923f_82a4, 0xab1c_5ed5],
        [0xd807_aa98, 0x1283_5b01, 0x2431_85be, 0x550c_7dc3],
        [0x72be_5d74, 0x80de_b1fe, 0x9bdc_06a7, 0xc19b_f174],
        [0xe49b_69c1, 0xefbe_4786, 0x0fc1_9dc6, 0x240c_a1cc],
        [0x2de9_2c6f, 0x4a74_84aa, 0x5cb0_a9dc, 0x76f9_88da],
        [0x983e_5152, 0xa831_c66d, 0xb003_27c8, 0xbf59_7fc7],
        [0xc6e0_0bf3, 0xd5a7_9147, 0x06ca_6351, 0x1429_2967],
        [0x27b7_0a85, 0x2e1b_2138, 0x4d2c_6dfc, 0x5338_0d13],
        [0x650a_7354, 0x766a_0abb, 0x81c2_c92e, 0x9272_2c85],
        [0xa2bf_e8a1, 0xa81a_664b, 0xc24b_8b70, 0xc76c_51a3],
        [0xd192_e819, 0xd699_0624, 0xf40e_3585, 0x106a_a070],
        [0x19a4_c116, 0x1e37_6c08, 0x2748_774c, 0x34b0_bcb5],
        [0x391c_0cb3, 0x4ed8_aa4a, 0x5b9c_ca4f, 0x682e_6ff3],
        [0x748f_82ee, 0x78a5_636f, 0x84c8_7814, 0x8cc7_0208],
        [0x90be_fffa, 0xa450_6ceb, 0xbef9_a3f7, 0xc671_78f2],
    ];

    /// Four `u32`s as a vector, the first in the lowest lane.
    #[inline]
    #[target_feature(enable = "sse2")]
    fn vector(w: [u32; 4]) -> __m128i {
        _mm_set_epi32(w[3] as i32, w[2] as i32, w[1] as i32, w[0] as i32)
    }

    /// A block's sixteen big-endian words, four per vector.
    #[inline]
    #[target_feature(enable = "sse2")]
    fn message(block: &[u8; BLOCK]) -> [__m128i; 4] {
        let word = |i: usize| {
            u32::from_be_bytes([
                block[4 * i],
                block[4 * i + 1],
                block[4 * i + 2],
                block[4 * i + 3],
            ])
        };
        std::array::from_fn(|q| {
            vector([
                word(4 * q),
                word(4 * q + 1),
                word(4 * q + 2),
                word(4 * q + 3),
            ])
        })
    }

    /// `[a..h]` as the extensions' ABEF and CDGH.
    #[inline]
    #[target_feature(enable = "sse2,ssse3,sse4.1")]
    fn load(h: &[u32; 8]) -> [__m128i; 2] {
        let cdab = vector([h[1], h[0], h[3], h[2]]);
        let efgh = vector([h[7], h[6], h[5], h[4]]);
        [
            _mm_alignr_epi8(cdab, efgh, 8),
            _mm_blend_epi16(efgh, cdab, 0xF0),
        ]
    }

    /// ABEF and CDGH back into `[a..h]`.
    #[inline]
    #[target_feature(enable = "sse2,ssse3,sse4.1")]
    fn store(h: &mut [u32; 8], [abef, cdgh]: [__m128i; 2]) {
        let feba = _mm_shuffle_epi32(abef, 0x1B);
        let dchg = _mm_shuffle_epi32(cdgh, 0xB1);
        let dcba = _mm_blend_epi16(feba, dchg, 0xF0);
        let hgef = _mm_alignr_epi8(dchg, feba, 8);
        *h = [
            _mm_extract_epi32(dcba, 0) as u32,
            _mm_extract_epi32(dcba, 1) as u32,
            _mm_extract_epi32(dcba, 2) as u32,
            _mm_extract_epi32(dcba, 3) as u32,
            _mm_extract_epi32(hgef, 0) as u32,
            _mm_extract_epi32(hgef, 1) as u32,
            _mm_extract_epi32(hgef, 2) as u32,
            _mm_extract_epi32(hgef, 3) as u32,
        ];
    }

    /// Four rounds of both streams, `w` their next four schedule words.
    #[inline]
    #[target_feature(enable = "sha,sse2")]
    fn rounds(s: &mut [[__m128i; 2]; 2], k: __m128i, w: [__m128i; 2]) {
        let ka = _mm_add_epi32(w[0], k);
        let kb = _mm_add_epi32(w[1], k);
        s[0][1] = _mm_sha256rnds2_epu32(s[0][1], s[0][0], ka);
        s[1][1] = _mm_sha256rnds2_epu32(s[1][1], s[1][0], kb);
        let ka = _mm_shuffle_epi32(ka, 0x0E);
        let kb = _mm_shuffle_epi32(kb, 0x0E);
        s[0][0] = _mm_sha256rnds2_epu32(s[0][0], s[0][1], ka);
        s[1][0] = _mm_sha256rnds2_epu32(s[1][0], s[1][1], kb);
    }

    /// The next four schedule words of one stream from its last sixteen.
    #[inline]
    #[target_feature(enable = "sha,sse2,ssse3")]
    fn schedule(w: &[__m128i; 4], j: usize) -> __m128i {
        let sum = _mm_add_epi32(
            _mm_sha256msg1_epu32(w[j], w[(j + 1) % 4]),
            _mm_alignr_epi8(w[(j + 3) % 4], w[(j + 2) % 4], 4),
        );
        _mm_sha256msg2_epu32(sum, w[(j + 3) % 4])
    }

    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    pub(super) fn compress_pair(
        ha: &mut [u32; 8],
        a: &[[u8; BLOCK]],
        hb: &mut [u32; 8],
        b: &[[u8; BLOCK]],
    ) {
        assert_eq!(a.len(), b.len(), "both streams give as many blocks");
        let k = K.map(|w| vector(w));
        let mut s = [load(ha), load(hb)];
        for (block_a, block_b) in a.iter().zip(b) {
            let saved = s;
            let mut wa = message(block_a);
            let mut wb = message(block_b);
            for (r, &kr) in k.iter().enumerate() {
                let j = r % 4;
                if r >= 4 {
                    wa[j] = schedule(&wa, j);
                    wb[j] = schedule(&wb, j);
                }
                rounds(&mut s, kr, [wa[j], wb[j]]);
            }
            for (now, before) in s.iter_mut().zip(saved) {
                now[0] = _mm_add_epi32(now[0], before[0]);
                now[1] = _mm_add_epi32(now[1], before[1]);
            }
        }
        store(ha, s[0]);
        store(hb, s[1]);
    }
}

#[cfg(test)]
mod tests {
    use sha2::{Digest as _, Sha256};

    use super::*;

    /// Bytes that differ from stream to stream and place to place.
    fn bytes(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 8) as u8)
            .collect()
    }

    /// Each state's digest is `sha2`'s of the bytes it was fed.
    fn assert_digests(streams: [(State, &[u8]); 2], case: &str) {
        for (name, (state, bytes)) in ["a", "b"].into_iter().zip(streams) {
            let want: [u8; 32] = Sha256::digest(bytes).into();
            assert_eq!(state.finalize(), want, "{name}: {case}");
        }
    }

    #[test]
    fn one_stream_gives_sha2s_digest_whatever_the_pieces() {
        for len in [0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 128, 1000, 4096 + 7] {
            let data = bytes(len, 3);
            let expected: [u8; 32] = Sha256::digest(&data).into();
            for piece in [1, 7, 64, 100, 5000] {
                let mut state = State::default();
                for part in data.chunks(piece) {
                    state.update(part);
                }
                assert_eq!(state.finalize(), expected, "len {len}, pieces of {piece}");
            }
        }
    }

    #[test]
    fn two_streams_hashed_as_a_pair_give_their_own_digests() {
        // Lengths on and off block boundaries, equal and unequal, with and
        // without a block left unfinished before the pair.
        for (len_a, len_b, lead) in [
            (0, 0, 0),
            (64, 64, 0),
            (1 << 20, 1 << 20, 0),
            (1 << 20, 3 << 18, 0),
            (4096, 100, 0),
            (77, 4096 + 13, 0),
            (4096, 4096, 5),
        ] {
            let a = bytes(len_a, 1);
            let b = bytes(len_b, 2);
            let (mut sa, mut sb) = (State::default(), State::default());
            sa.update(&a[..lead.min(len_a)]);
            update_pair(&mut sa, &a[lead.min(len_a)..], &mut sb, &b);
            assert_digests([(sa, &a), (sb, &b)], &format!("{len_a}/{len_b}/{lead}"));
        }
    }

    /// Random lengths and split points, one stream alone then paired with
    /// another, against `sha2`.
    #[test]
    fn random_pieces_hashed_alone_and_in_pairs_give_sha2s_digests() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = |bound: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % bound as u64) as usize
        };
        for round in 0..200 {
            let a = bytes(next(9000), round as u8);
            let b = bytes(next(9000), !(round as u8));
            let (mut sa, mut sb) = (State::default(), State::default());
            let (mut at_a, mut at_b) = (0, 0);
            while at_a < a.len() || at_b < b.len() {
                let step_a = next(2000).min(a.len() - at_a);
                let step_b = next(2000).min(b.len() - at_b);
                if next(3) == 0 {
                    sa.update(&a[at_a..at_a + step_a]);
                } else {
                    update_pair(
                        &mut sa,
                        &a[at_a..at_a + step_a],
                        &mut sb,
                        &b[at_b..at_b + step_b],
                    );
                    at_b += step_b;
                }
                at_a += step_a;
                if at_a == a.len() && at_b < b.len() {
                    sb.update(&b[at_b..]);
                    at_b = b.len();
                }
            }
            assert_digests([(sa, &a), (sb, &b)], &format!("round {round}"));
        }
    }

    #[test]
    fn the_pair_kernel_matches_sha2_block_by_block() {
        if !pairs() {
            return;
        }
        let a = bytes(64 * 33, 9);
        let b = bytes(64 * 33, 10);
        let (a_blocks, _) = a.as_chunks::<BLOCK>();
        let (b_blocks, _) = b.as_chunks::<BLOCK>();
        let (mut ha, mut hb) = (IV, IV);
        assert!(compress_pair(&mut ha, a_blocks, &mut hb, b_blocks));
        let (mut want_a, mut want_b) = (IV, IV);
        compress256(&mut want_a, a_blocks);
        compress256(&mut want_b, b_blocks);
        assert_eq!((ha, hb), (want_a, want_b));
    }
}
