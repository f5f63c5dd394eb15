//! The stable-toolchain fuzz run: every seed, then a fixed number of deterministic
//! mutations of them. A failure prints the input's index, which the same seed reproduces.

use std::path::Path;

use super::*;

fn read_dir(name: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds").join(name);
    let mut paths: Vec<_> =
        std::fs::read_dir(&dir).expect("seed dir").map(|e| e.expect("entry").path()).collect();
    paths.sort();
    paths.iter().map(|p| std::fs::read(p).expect("seed")).collect()
}

/// xorshift64*: deterministic and dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { (self.next() % n as u64) as usize }
    }
}

const TOKENS: [&str; 24] = [
    "<!---->",
    "<?pi x?>",
    "<saml:Assertion ID=\"_forged\" Version=\"2.0\"><saml:Issuer>x</saml:Issuer></saml:Assertion>",
    "</saml:Assertion>",
    "<samlp:Extensions>",
    "</samlp:Extensions>",
    "<ds:Object>",
    " ID=\"_dup\"",
    "URI=\"\"",
    "bob@corp.example.com",
    "alice@corp.example.com",
    "&amp;",
    "&#x41;",
    "<![CDATA[x]]>",
    "<!DOCTYPE r [<!ENTITY e \"x\">]>",
    "xmlns:saml=\"urn:example\"",
    "<ds:Signature xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\"/>",
    "http://www.w3.org/2000/09/xmldsig#rsa-sha1",
    "\"",
    "<",
    ">",
    "\u{0}",
    "\u{feff}",
    "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>",
];

fn mutate(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut data = seeds[rng.below(seeds.len())].clone();
    for _ in 0..=rng.below(3) {
        let at = rng.below(data.len() + 1);
        match rng.below(7) {
            0 if !data.is_empty() => {
                let i = rng.below(data.len());
                data[i] ^= 1 << rng.below(8);
            }
            1 => {
                let end = (at + rng.below(64)).min(data.len());
                data.drain(at..end);
            }
            2 | 3 => {
                let token = TOKENS[rng.below(TOKENS.len())].as_bytes();
                data.splice(at..at, token.iter().copied());
            }
            4 => {
                let end = (at + rng.below(512)).min(data.len());
                let copy = data[at..end].to_vec();
                let to = rng.below(data.len() + 1);
                data.splice(to..to, copy);
            }
            5 => {
                let other = &seeds[rng.below(seeds.len())];
                let from = rng.below(other.len());
                data.truncate(at);
                data.extend_from_slice(&other[from..]);
            }
            _ => data.truncate(at),
        }
    }
    data
}

#[test]
fn every_seed_is_accepted_untouched() {
    let seeds = read_dir("acs");
    assert_eq!(seeds.len(), 3);
    let mut subjects: Vec<String> = seeds.iter().flat_map(|seed| acs(seed)).collect();
    subjects.sort();
    let mut expected: Vec<String> = SEED_SUBJECTS.iter().map(|s| s.to_string()).collect();
    expected.sort();
    assert_eq!(subjects, expected, "the harness must reach the end of the checks");
}

#[test]
fn mutated_responses_never_panic_nor_name_anyone_else() {
    let seeds = read_dir("acs");
    let mut rng = Rng(0x5eed_dec0_de5a_4d11);
    for round in 0..1500 {
        let input = mutate(&mut rng, &seeds);
        for subject in acs(&input) {
            assert!(SEED_SUBJECTS.contains(&subject.as_str()), "round {round} accepted {subject:?}");
        }
    }
}

#[test]
fn mutated_metadata_never_panics() {
    let seeds = read_dir("metadata");
    let mut rng = Rng(0x0dd_ba11_cafe_f00d);
    for _ in 0..1500 {
        metadata(&mutate(&mut rng, &seeds));
    }
}
