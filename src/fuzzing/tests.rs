//! The fuzz entry points over their committed seeds, on the stable toolchain.

use std::path::Path;

use super::*;

/// A fuzz target: its name and entry point.
type Target = (&'static str, fn(&[u8]));

#[test]
fn fuzz_entry_points_hold_for_every_committed_seed() {
    let targets: [Target; 4] =
        [("cookies", cookies), ("paths", paths), ("headers", headers), ("config", config)];
    for (name, entry) in targets {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds").join(name);
        let mut seeds: Vec<_> =
            std::fs::read_dir(&dir).expect("seed dir").map(|e| e.expect("entry").path()).collect();
        seeds.sort();
        assert!(seeds.len() >= 3, "{name}: too few seeds in {}", dir.display());
        for seed in seeds {
            let data = std::fs::read(&seed).expect("seed");
            let run = std::panic::catch_unwind(|| entry(&data));
            assert!(run.is_ok(), "{name}: seed {} fails", seed.display());
        }
    }
}
