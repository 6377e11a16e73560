//! Property tests that stand in for coverage-guided fuzzing (see
//! docs/adr/0024): the parsers and checks that take input from outside —
//! CSV uploads, carrier webhooks and their signatures, click tokens, reply
//! keywords, message templates. Each target first replays its corpus
//! (`tests/fuzz/corpus/<target>/`), then runs generated cases; a failure
//! proptest finds is kept in `tests/fuzz/proptest-regressions/<target>.txt`
//! and replayed first from then on. `PROPTEST_CASES` sets how many cases
//! run. One test binary, so the build links once.

mod click_token;
mod csv_import;
mod csv_shape;
mod keywords;
mod telnyx;
mod template;
mod twilio;

use std::path::{Path, PathBuf};

use proptest::strategy::Strategy;
use proptest::test_runner::{
    Config, FileFailurePersistence, TestCaseResult, TestError, TestRunner,
};

/// Calls `check` on every file of the target's corpus, in name order.
pub fn replay_corpus(target: &str, check: impl Fn(&[u8]) -> TestCaseResult) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|err| panic!("read the corpus {}: {err}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "the corpus {} is empty", dir.display());
    for file in files {
        let bytes = std::fs::read(&file).unwrap();
        if let Err(err) = check(&bytes) {
            panic!("{target}: corpus file {} fails: {err}", file.display());
        }
    }
}

/// `replay_corpus` for a target whose input is text: each file is read as
/// UTF-8, invalid bytes replaced.
pub fn replay_text_corpus(target: &str, check: impl Fn(&str) -> TestCaseResult) {
    replay_corpus(target, |bytes| check(&String::from_utf8_lossy(bytes)));
}

/// Cases a target runs when `PROPTEST_CASES` is not set: the whole set
/// then takes well under a minute of test time on two cores.
const DEFAULT_CASES: u32 = 2048;

/// Runs `test` on cases drawn from `strategy`: `PROPTEST_CASES` of them
/// (`DEFAULT_CASES` when unset) divided by `cost`, so that a target whose
/// case is expensive keeps the whole set within its time in CI.
pub fn generated<S: Strategy>(
    target: &str,
    cost: u32,
    strategy: S,
    test: impl Fn(S::Value) -> TestCaseResult,
) {
    let mut defaults = Config::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        defaults.cases = DEFAULT_CASES;
    }
    let regressions: &'static str = Box::leak(
        format!(
            "{}/tests/fuzz/proptest-regressions/{target}.txt",
            env!("CARGO_MANIFEST_DIR")
        )
        .into_boxed_str(),
    );
    let config = Config {
        cases: (defaults.cases / cost).max(1),
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(regressions))),
        ..defaults
    };
    match TestRunner::new(config).run(&strategy, test) {
        Ok(()) => {}
        Err(TestError::Fail(why, value)) => {
            panic!("{target}: {why}\nminimal failing input: {value:#?}")
        }
        Err(TestError::Abort(why)) => panic!("{target}: aborted: {why}"),
    }
}
