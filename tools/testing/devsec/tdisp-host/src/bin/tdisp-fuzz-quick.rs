// SPDX-License-Identifier: GPL-2.0

//! Seeded mutational fuzzing of the TDISP and SPDM libraries on the stable toolchain.
//!
//! `make test` runs this for a few seconds per target: no coverage feedback (that is what
//! `make fuzz` and libFuzzer are for), but a deterministic stream of inputs from a fixed seed,
//! mutated from a seed corpus of well-formed messages and operation streams, fed to the
//! targets of `devsec_tdisp_host::fuzz`. Prints KTAP: one test point per target, with the
//! number of executions and the rate; a panic fails the point and prints the input.
//!
//! Usage: `tdisp-fuzz-quick [SECONDS_PER_TARGET] [SEED]` (defaults 8 and 0x5eed), or
//! `tdisp-fuzz-quick --seeds DIR` to write the seed corpus to `DIR/<target>/` for libFuzzer
//! (`make fuzz`).

use devsec_tdisp_host::fuzz;
use std::panic;
use std::time::{Duration, Instant};

/// Xorshift64*: a small deterministic generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        match u64::try_from(n) {
            Ok(0) | Err(_) => 0,
            Ok(n) => usize::try_from(self.next() % n).unwrap_or(0),
        }
    }

    fn byte(&mut self) -> u8 {
        self.next().to_le_bytes()[0]
    }
}

/// Interesting byte values for the "set a byte" mutation.
const MAGIC: [u8; 12] = [
    0, 1, 0x7f, 0x80, 0xff, 0x10, 0x12, 0x7e, 0xfe, 0x01, 0x81, 0x87,
];

/// Applies one to four random mutations to `input`, splicing from `other`.
fn mutate(rng: &mut Rng, input: &mut Vec<u8>, other: &[u8]) {
    for _ in 0..=rng.below(4) {
        let len = input.len();
        match rng.below(7) {
            0 if len > 0 => {
                let at = rng.below(len);
                input[at] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let at = rng.below(len);
                input[at] = MAGIC[rng.below(MAGIC.len())];
            }
            2 if len > 0 => {
                let at = rng.below(len);
                input[at] = rng.byte();
            }
            3 if len < 4096 => {
                let at = rng.below(len + 1);
                input.insert(at, rng.byte());
            }
            4 if len > 0 => {
                let at = rng.below(len);
                let end = (at + 1 + rng.below(16)).min(len);
                input.drain(at..end);
            }
            5 if !other.is_empty() => {
                let from = rng.below(other.len());
                let take = 1 + rng.below(other.len() - from);
                let at = rng.below(len + 1);
                let piece: Vec<u8> = other[from..from + take].to_vec();
                input.splice(at..at, piece);
            }
            _ => {
                let cut = rng.below(len + 1);
                input.truncate(cut);
            }
        }
    }
}

/// Seeds: operation streams that walk the life cycle, and encoded messages.
fn responder_seeds() -> Vec<Vec<u8>> {
    // op 2..=5 = structured request: [op, kind, fields..., damage selector, room selector]
    let lock = [2u8, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2];
    let start = [3u8, 5, 1, 1, 2];
    let report = [4u8, 3, 0, 0, 1, 2];
    let stop = [5u8, 7, 1, 2];
    let mut seeds = Vec::new();
    let mut walk = vec![0u8];
    for part in [&lock[..], &report, &start, &report, &stop, &lock, &start] {
        walk.extend_from_slice(part);
    }
    seeds.push(walk.clone());
    let mut layout = vec![0u8, 8, 3, 0, 0, 1, 4, 0, 0, 0, 1, 1, 2, 0, 1, 0, 1, 0];
    layout.extend_from_slice(&walk);
    seeds.push(layout);
    let mut faults = vec![0u8, 6, 2, 9, 3];
    faults.extend_from_slice(&walk);
    seeds.push(faults);
    seeds.push(vec![
        0, 0, 28, 0x12, 0xfe, 0, 0, 3, 0, 2, 1, 0, 17, 0, 1, 0x10, 0x81,
    ]);
    seeds
}

fn requester_seeds() -> Vec<Vec<u8>> {
    let mut lock_rsp = vec![0x12, 0x7e, 0, 0, 3, 0, 2, 1, 0, 49, 0, 1, 0x10, 0x03, 0, 0];
    lock_rsp.extend_from_slice(&[0, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
    lock_rsp.extend((1..=32).map(|b: u8| b));
    let mut report = vec![0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0];
    report.extend_from_slice(&[0, 0, 0xe, 0, 0, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0]);
    report.extend_from_slice(&[0, 1, 0xe, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 2, 0]);
    report.extend_from_slice(&[0, 0, 0, 0]);
    let spdm_error = vec![0x12, 0x7f, 0x07, 0xfe];
    // Mode 2: two BARs, two ranges covering them; then an MSI-X and a NON_TEE variant.
    let structured = vec![
        2, 2, 0, 1, 1, 0, 0, 0, 0, 2, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0,
    ];
    let mut msix = structured.clone();
    msix[14] = 3;
    let mut non_tee = structured.clone();
    non_tee[14] = 5;
    let mut seeds = vec![structured, msix, non_tee];
    for (mode, msg) in [
        (0u8, &lock_rsp),
        (0, &report),
        (0, &spdm_error),
        (1, &lock_rsp),
    ] {
        let mut seed = vec![mode];
        seed.extend_from_slice(msg);
        seeds.push(seed);
    }
    seeds
}

/// Seeds of the SPDM target: a whole session of requester requests (op 2, request kind,
/// its fields, room selector), then the same with raw requests mixed in.
fn spdm_seeds() -> Vec<Vec<u8>> {
    let mut session = vec![0u8];
    for step in [
        &[2u8, 0, 2][..],
        &[2, 1, 2],
        &[2, 2, 2],
        &[2, 3, 2],
        &[2, 4, 0, 2],
        &[2, 5, 1],
    ] {
        session.extend_from_slice(step);
    }
    session.extend_from_slice(&[7; 32]);
    session.extend_from_slice(&[2, 2, 6, 1, 0]);
    session.extend_from_slice(&[9; 32]);
    session.push(2);
    let mut mixed = session.clone();
    mixed.extend_from_slice(&[0, 4, 0x12, 0xfe, 0, 0, 2, 0, 4, 0x12, 0x84, 0, 0, 2]);
    mixed.extend_from_slice(&session[1..]);
    vec![session, mixed, vec![0, 0, 4, 0x10, 0x84, 0, 0, 2]]
}

fn roundtrip_seeds() -> Vec<Vec<u8>> {
    vec![vec![0; 64], (0..=255).collect(), vec![0xff; 200]]
}

/// Runs `target` on mutated seeds for `budget`; returns (executions, seconds, failure).
fn run(
    target: fn(&[u8]),
    seeds: &[Vec<u8>],
    seed: u64,
    budget: Duration,
) -> (u64, f64, Option<(Vec<u8>, String)>) {
    let mut rng = Rng(seed | 1);
    let mut corpus: Vec<Vec<u8>> = seeds.to_vec();
    let started = Instant::now();
    let mut execs = 0u64;
    while started.elapsed() < budget {
        for _ in 0..64 {
            let base = &corpus[rng.below(corpus.len())];
            let other = &corpus[rng.below(corpus.len())];
            let mut input = base.clone();
            mutate(&mut rng, &mut input, other);
            let outcome = panic::catch_unwind(|| target(&input));
            execs += 1;
            if let Err(payload) = outcome {
                let msg = payload
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                return (execs, started.elapsed().as_secs_f64(), Some((input, msg)));
            }
            // Keep a bounded, slowly changing corpus: without coverage feedback this only
            // lets mutations accumulate.
            if rng.below(16) == 0 {
                if corpus.len() < 256 {
                    corpus.push(input);
                } else {
                    let at = seeds.len() + rng.below(corpus.len() - seeds.len());
                    corpus[at] = input;
                }
            }
        }
    }
    (execs, started.elapsed().as_secs_f64(), None)
}

/// A fuzz target: its name, its function and its seed corpus.
type Target = (&'static str, fn(&[u8]), Vec<Vec<u8>>);

/// Writes every target's seeds to `dir/<target>/seed-<n>`.
fn write_seeds(dir: &str, targets: &[Target]) -> std::io::Result<()> {
    for (name, _, seeds) in targets {
        let sub = std::path::Path::new(dir).join(name);
        std::fs::create_dir_all(&sub)?;
        for (i, seed) in seeds.iter().enumerate() {
            std::fs::write(sub.join(format!("seed-{i}")), seed)?;
        }
    }
    Ok(())
}

fn main() {
    let targets: [Target; 4] = [
        ("responder", fuzz::responder, responder_seeds()),
        ("requester", fuzz::requester, requester_seeds()),
        ("roundtrip", fuzz::roundtrip, roundtrip_seeds()),
        ("spdm", fuzz::spdm_responder, spdm_seeds()),
    ];
    let mut args = std::env::args().skip(1).peekable();
    if args.peek().map(String::as_str) == Some("--seeds") {
        let dir = args.nth(1).unwrap_or_else(|| ".".into());
        if let Err(err) = write_seeds(&dir, &targets) {
            eprintln!("tdisp-fuzz-quick: {dir}: {err}");
            std::process::exit(1);
        }
        return;
    }
    let seconds: f64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(8.0);
    let seed = args
        .next()
        .and_then(|s| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok())
        .unwrap_or(0x5eed);
    // The default hook would print every caught panic; print failures ourselves.
    panic::set_hook(Box::new(|_| {}));
    println!("KTAP version 1");
    println!("1..{}", targets.len());
    let mut failed = 0;
    for (i, (name, target, seeds)) in targets.iter().enumerate() {
        let budget = Duration::from_secs_f64(seconds);
        let (execs, secs, failure) = run(*target, seeds, seed ^ (i as u64 + 1), budget);
        let rate = execs as f64 / secs.max(1e-9);
        println!("# fuzz_{name}: {execs} executions in {secs:.1} s ({rate:.0}/s), seed {seed:#x}");
        match failure {
            None => println!("ok {} fuzz_{name}", i + 1),
            Some((input, msg)) => {
                failed += 1;
                println!("# fuzz_{name}: panic: {msg}");
                println!("# fuzz_{name}: input ({} bytes): {input:02x?}", input.len());
                println!("not ok {} fuzz_{name}", i + 1);
            }
        }
    }
    std::process::exit(i32::from(failed > 0));
}
