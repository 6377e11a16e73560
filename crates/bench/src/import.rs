//! `textbank bench import`: a seeded, realistic CSV (messy phone formats,
//! about 2% invalid and 1% duplicate numbers, custom columns) imported through
//! the upload pipeline — spool, inspect, normalize, append, project — with
//! the baseline of reading and parsing the same file alone.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use bytes::Bytes;
use futures_util::stream;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use textbank_app::{App, Config, ImportLimits, ListDeclaration, SecretKeySource};
use textbank_testkit::ScratchDb;
use tokio::io::AsyncReadExt;

use crate::{BenchResult, ImportArgs, memory_mb};

const FIRST: [&str; 10] = [
    "Maria", "James", "Aisha", "Wei", "Carlos", "Emily", "Dmitri", "Nia", "José", "Zoë",
];
pub(crate) const LAST: [&str; 8] = [
    "Garcia", "Smith", "Okafor", "Chen", "Rivera", "Nguyen", "O'Brien", "Kowalski",
];
const ZIPS: [&str; 8] = [
    "10001", "94103", "60601", "30301", "73301", "02134", "98101", "33101",
];
const PRECINCTS: [&str; 5] = [
    "12-A",
    "12-B",
    "7",
    "Ward 3, Precinct 2",
    "Lincoln HS \"Gym\"",
];

pub async fn run(scratch: &ScratchDb, args: &ImportArgs) -> BenchResult {
    let file = tempfile::NamedTempFile::new()?;
    let bytes = generate(file.path(), args.rows, args.seed)?;
    measure(scratch, file.path(), args, bytes).await
}

/// Writes the CSV; returns its size in bytes.
fn generate(path: &Path, rows: u64, seed: u64) -> BenchResult<u64> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    writeln!(
        out,
        "firstName,lastName,cell,zip,external_id,precinct,party,support_score"
    )?;
    let mut last_phone = String::from("5552010000");
    for row in 0..rows {
        let roll = rng.random_range(0..100);
        // A stride coprime to 10^7 walks distinct numbers, so duplicates come
        // only from the deliberate 1% below.
        let digits = format!("555{:07}", (row * 7_919 + seed) % 10_000_000);
        let phone = match roll {
            0 | 1 => format!("{}", rng.random_range(10_000..999_999)), // invalid
            2 => last_phone.clone(),                                   // duplicate
            _ => {
                let (a, b, c) = (&digits[..3], &digits[3..6], &digits[6..]);
                match row % 5 {
                    0 => format!("({a}) {b}-{c}"),
                    1 => format!("{a}.{b}.{c}"),
                    2 => format!("+1 {a} {b} {c}"),
                    3 => format!("1-{a}-{b}-{c}"),
                    _ => digits.clone(),
                }
            }
        };
        if roll > 2 {
            last_phone = phone.clone();
        }
        let precinct = PRECINCTS[rng.random_range(0..PRECINCTS.len())];
        let precinct = if precinct.contains([',', '"']) {
            format!("\"{}\"", precinct.replace('"', "\"\""))
        } else {
            precinct.to_owned()
        };
        writeln!(
            out,
            "{},{},{phone},{},V{row:08},{precinct},{},{}",
            FIRST[rng.random_range(0..FIRST.len())],
            LAST[rng.random_range(0..LAST.len())],
            ZIPS[rng.random_range(0..ZIPS.len())],
            ["D", "R", "I", ""][rng.random_range(0..4)],
            rng.random_range(0..100),
        )?;
    }
    out.flush()?;
    Ok(std::fs::metadata(path)?.len())
}

/// The file as a body stream of 256 KiB chunks, like an HTTP upload.
async fn body(
    path: &Path,
) -> BenchResult<impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Unpin> {
    let file = tokio::fs::File::open(path).await?;
    Ok(Box::pin(stream::unfold(file, |mut file| async move {
        let mut buffer = vec![0u8; 256 * 1024];
        match file.read(&mut buffer).await {
            Ok(0) => None,
            Ok(n) => {
                buffer.truncate(n);
                Some((Ok(Bytes::from(buffer)), file))
            }
            Err(err) => Some((Err(err), file)),
        }
    })))
}

async fn measure(scratch: &ScratchDb, path: &Path, args: &ImportArgs, bytes: u64) -> BenchResult {
    // Baseline: read and parse the same CSV alone.
    let started = Instant::now();
    let path_owned = path.to_owned();
    let parsed = tokio::task::spawn_blocking(move || -> BenchResult<u64> {
        let mut reader = csv::ReaderBuilder::new()
            .flexible(true)
            .from_path(path_owned)?;
        let mut record = csv::StringRecord::new();
        let mut rows = 0;
        while reader.read_record(&mut record)? {
            rows += 1;
        }
        Ok(rows)
    })
    .await??;
    let baseline = started.elapsed();

    // The app alone, no server: the figure is the pipeline's.
    let app = App::open(&Config {
        secret_key: SecretKeySource::Generated,
        import_limits: ImportLimits {
            max_bytes: u64::MAX,
            max_rows: u64::MAX,
            ..ImportLimits::default()
        },
        ..Config::with_open_database(scratch.database.clone())
    })
    .await?;
    let created = app.create_org("Benchmark").await?;
    let caller = app.authenticate(&created.owner_key, None, None).await?;
    let declaration = ListDeclaration {
        name: "benchmark list".into(),
        source: "generated".into(),
        consent_basis: "benchmark".into(),
    };
    let started = Instant::now();
    let summary = app
        .import_list(&caller, declaration, body(path).await?, app.import_limits())
        .await?;
    let elapsed = started.elapsed();
    let events = app.events().head_position().await?;
    println!(
        "{}",
        json!({
            "bench": "import",
            "backend": app.events().backend().name(),
            "rows": parsed,
            "file_bytes": bytes,
            "value": (elapsed.as_secs_f64() * 1000.0).round() / 1000.0,
            "unit": "s",
            "rows_per_s": (parsed as f64 / elapsed.as_secs_f64()).round(),
            "baseline": (baseline.as_secs_f64() * 1000.0).round() / 1000.0,
            "baseline_rows_per_s": (parsed as f64 / baseline.as_secs_f64()).round(),
            "imported": summary.imported,
            "rejected": summary.rejected,
            "events": events,
            "peak_rss_mb": memory_mb("self", "VmHWM"),
        })
    );
    debug_assert_eq!(parsed, args.rows);
    app.close().await;
    Ok(())
}
