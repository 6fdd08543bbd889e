//! A small deterministic mutator for the bounded fuzz run in CI: no coverage feedback, just
//! the mutations that find length bugs in wire formats — bit flips, byte and chunk inserts,
//! deletions, truncation, splices of other corpus entries, and lengths smashed to the values
//! decoders get wrong (0x7fffffff, -1, 0x80000000, 0xffff, huge varints).

/// xorshift64*: tiny, fast and the same everywhere for a given seed.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    pub fn byte(&mut self) -> u8 {
        self.next_u64() as u8
    }
}

/// Big-endian 32-bit lengths decoders mishandle.
const SMASH_I32: [u32; 8] = [
    0x7fff_ffff,
    0xffff_ffff,
    0x8000_0000,
    0x0000_ffff,
    0x0001_0000,
    0x00ff_ffff,
    0x7fff_fffe,
    0x0000_7fff,
];

/// Big-endian 16-bit lengths.
const SMASH_I16: [u16; 5] = [0x7fff, 0xffff, 0x8000, 0x00ff, 0x0100];

/// Unsigned varints (compact lengths are `n + 1`, record lengths zigzag): huge, the largest
/// 5-byte one, zigzag -1 and zigzag 0x7fffffff.
const SMASH_VARINT: [&[u8]; 5] = [
    &[0xff, 0xff, 0xff, 0xff, 0x07],
    &[0xff, 0xff, 0xff, 0xff, 0x0f],
    &[0x01],
    &[0xfe, 0xff, 0xff, 0xff, 0x0f],
    &[0x80, 0x80, 0x80, 0x80, 0x08],
];

/// The largest input the mutator makes.
pub const MAX_LEN: usize = 64 * 1024;

/// Mutates `input` in place with 1–4 stacked mutations; `corpus` feeds splices.
pub fn mutate(rng: &mut Rng, input: &mut Vec<u8>, corpus: &[Vec<u8>]) {
    let rounds = 1 + rng.below(4);
    for _ in 0..rounds {
        mutate_once(rng, input, corpus);
    }
    input.truncate(MAX_LEN);
}

fn mutate_once(rng: &mut Rng, input: &mut Vec<u8>, corpus: &[Vec<u8>]) {
    if input.is_empty() {
        input.push(rng.byte());
        return;
    }
    let len = input.len();
    let at = rng.below(len);
    match rng.below(11) {
        // Flip one bit.
        0 => input[at] ^= 1 << rng.below(8),
        // Set one byte to a random or boundary value.
        1 => input[at] = [rng.byte(), 0, 0xff, 0x7f, 0x80][rng.below(5)],
        // Insert a few random bytes.
        2 => {
            let n = 1 + rng.below(8);
            let bytes: Vec<u8> = (0..n).map(|_| rng.byte()).collect();
            input.splice(at..at, bytes);
        }
        // Delete a range.
        3 => {
            let end = (at + 1 + rng.below(16)).min(len);
            input.drain(at..end);
        }
        // Truncate.
        4 => input.truncate(at),
        // Smash a 32-bit length.
        5 | 6 => {
            let value = SMASH_I32[rng.below(SMASH_I32.len())].to_be_bytes();
            overwrite(input, at, &value);
        }
        // Smash a 16-bit length.
        7 => {
            let value = SMASH_I16[rng.below(SMASH_I16.len())].to_be_bytes();
            overwrite(input, at, &value);
        }
        // Smash a varint (replacing one byte with it, so later fields shift).
        8 => {
            let value = SMASH_VARINT[rng.below(SMASH_VARINT.len())];
            input.splice(at..at + 1, value.iter().copied());
        }
        // Splice in a chunk of another corpus entry.
        9 if !corpus.is_empty() => {
            let other = &corpus[rng.below(corpus.len())];
            if !other.is_empty() {
                let from = rng.below(other.len());
                let n = 1 + rng.below((other.len() - from).min(64));
                let chunk = other[from..from + n].to_vec();
                overwrite(input, at, &chunk);
            }
        }
        // Duplicate a chunk of the input itself.
        _ => {
            let n = 1 + rng.below((len - at).min(32));
            let chunk = input[at..at + n].to_vec();
            let to = rng.below(len);
            input.splice(to..to, chunk);
        }
    }
}

/// Writes `bytes` at `at`, growing the input if it runs past the end.
fn overwrite(input: &mut Vec<u8>, at: usize, bytes: &[u8]) {
    let end = at + bytes.len();
    if end > input.len() {
        input.resize(end, 0);
    }
    input[at..end].copy_from_slice(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_makes_the_same_inputs() {
        let corpus = vec![b"hello world".to_vec(), vec![0; 40]];
        let run = |seed| {
            let mut rng = Rng::new(seed);
            (0..100)
                .map(|i| {
                    let mut input = corpus[i % 2].clone();
                    mutate(&mut rng, &mut input, &corpus);
                    input
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
    }

    #[test]
    fn inputs_stay_bounded_and_empty_inputs_grow() {
        let mut rng = Rng::new(1);
        let mut input = Vec::new();
        mutate(&mut rng, &mut input, &[]);
        assert!(!input.is_empty());
        let mut big = vec![0; MAX_LEN];
        for _ in 0..50 {
            mutate(&mut rng, &mut big, &[]);
            assert!(big.len() <= MAX_LEN);
        }
    }
}
