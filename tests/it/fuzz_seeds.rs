//! The fuzz targets' committed seeds (written by `cargo run --example write_fuzz_seeds`)
//! and kept crash inputs, run through the targets' bodies.

use std::path::Path;

/// Every committed seed and every kept crash input (`fuzz/regressions/<target>/`) runs
/// through its target's body, so a fixed fuzz finding stays fixed without a nightly build.
#[test]
fn fuzz_seeds_and_regressions_run_clean() {
    use annals::internals::fuzz::TARGETS;
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut declared: Vec<String> = std::fs::read_dir(fuzz.join("fuzz_targets"))
        .unwrap()
        .map(|e| e.unwrap().path().file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    declared.sort();
    let known: Vec<&str> = TARGETS.iter().map(|(name, _)| *name).collect();
    assert_eq!(
        declared, known,
        "fuzz_targets/ and internals::fuzz::TARGETS must name the same targets"
    );
    let mut inputs = 0;
    for (name, run) in TARGETS {
        let seeds = fuzz.join("seeds").join(name);
        assert!(seeds.is_dir(), "target {name} has no committed seeds in {}", seeds.display());
        for dir in [seeds, fuzz.join("regressions").join(name)] {
            let Ok(entries) = std::fs::read_dir(&dir) else { continue };
            for entry in entries {
                let path = entry.unwrap().path();
                let bytes = std::fs::read(&path).unwrap();
                let outcome = std::panic::catch_unwind(|| run(&bytes));
                assert!(outcome.is_ok(), "fuzz target {name} panics on {}", path.display());
                inputs += 1;
            }
        }
    }
    assert!(inputs >= TARGETS.len(), "only {inputs} inputs found");
}
