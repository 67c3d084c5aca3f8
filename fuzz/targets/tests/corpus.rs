//! Every committed corpus file (`fuzz/corpus/TARGET/*`, seeds, captures and the inputs of fixed
//! crashes) replayed through its target on stable: the fuzz smoke test of the README's test command.

use std::path::Path;

#[test]
fn every_corpus_file_replays_through_its_target_without_a_panic() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpus");
    let mut replayed = 0;
    for (name, target) in rgi_fuzz_targets::TARGETS {
        let dir = corpus.join(name);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|entry| entry.expect("a directory entry").path())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "no corpus for {name}");
        for file in files {
            let data = std::fs::read(&file).expect("a corpus file");
            let outcome = std::panic::catch_unwind(|| target(&data));
            assert!(outcome.is_ok(), "{name}: {} panicked", file.display());
            replayed += 1;
        }
    }
    eprintln!("replayed {replayed} corpus files");
}

#[test]
fn every_target_has_a_cargo_fuzz_entry() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz_targets");
    for (name, _) in rgi_fuzz_targets::TARGETS {
        let file = dir.join(format!("{name}.rs"));
        let text =
            std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        assert!(
            text.contains(&format!("\"{name}\"")),
            "{} calls another target",
            file.display()
        );
    }
}
