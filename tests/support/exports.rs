//! What the export tests share: reading outputs and checkpoints, and the bytes an export must
//! hold (the sandbox's dump lines in export order).

use std::path::{Path, PathBuf};
use std::time::Duration;

use auth0_bulk::format::csv::CsvDecoder;
use auth0_bulk::sandbox::SandboxOptions;
use serde_json::{Map, Value};

use super::child::{Ran, run};
use super::live::{Live, user_id};

pub type User = Map<String, Value>;

/// `auth0-bulk export --domain <the sandbox>` with its credentials in the environment.
pub fn export(live: &Live) -> std::process::Command {
    super::child::export(live.domain(), live.client_id(), live.client_secret())
}

pub fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

pub fn read_text(path: &Path) -> String {
    String::from_utf8(read(path)).expect("the export is UTF-8")
}

pub fn parse(line: &str) -> User {
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON user ({e}): {line}"))
}

pub fn ndjson_users(text: &str) -> Vec<User> {
    text.lines().map(parse).collect()
}

/// Reads an exported CSV file back with the importer's decoder.
pub fn decode_csv(bytes: &[u8], unescape: bool) -> Vec<User> {
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(bytes);
    let header = reader.headers().expect("a header").clone();
    let decoder = CsvDecoder::new(&header, unescape).expect("the header decodes");
    reader
        .records()
        .enumerate()
        .map(|(index, record)| {
            let record = record.expect("a CSV record");
            decoder
                .decode(&record)
                .unwrap_or_else(|e| panic!("row {}: {e}", index + 1))
        })
        .collect()
}

pub fn gunzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(bytes)
        .read_to_end(&mut out)
        .expect("the output is gzip");
    out
}

/// The export's order: `created_at`, then `user_id`.
pub fn order_key(user: &User) -> (String, String) {
    let created = user["created_at"].as_str().expect("created_at").to_string();
    (created, user_id(user).to_string())
}

/// What an export of the users that `keep` selects must hold, byte for byte: their dump
/// lines in (`created_at`, `user_id`) order.
pub fn expected_export(live: &Live, keep: impl Fn(&User) -> bool) -> String {
    let mut selected: Vec<((String, String), String)> = live
        .dump_lines()
        .into_values()
        .filter_map(|line| {
            let user = parse(&line);
            keep(&user).then(|| (order_key(&user), line))
        })
        .collect();
    selected.sort();
    selected.into_iter().map(|(_, line)| line).collect()
}

/// The run state beside an output (the default `--state`).
pub fn state_of(output: &Path) -> PathBuf {
    let mut name = output.file_name().expect("a file name").to_os_string();
    name.push(".state");
    output.with_file_name(name)
}

/// The saved checkpoint, if any.
pub fn checkpoint(state: &Path) -> Option<Value> {
    let text = std::fs::read_to_string(state.join("export.json")).ok()?;
    serde_json::from_str(&text).ok()
}

/// A clean export of `live` to `dir/name` with `args`: its bytes.
pub fn clean_export(live: &Live, dir: &Path, name: &str, args: &[&str]) -> (Vec<u8>, Ran) {
    let output = dir.join(name);
    let ran = run(export(live).arg("--output").arg(&output).args(args));
    ran.expect_code(0);
    (read(&output), ran)
}

/// A tenant slow enough (latency on every request) that an export lasts a second or two, so
/// a signal, an outage or a second run lands in the middle of it.
pub fn slow_tenant() -> Live {
    Live::start(SandboxOptions {
        generate: 4_000,
        latency: Duration::from_millis(25),
        ..Default::default()
    })
}

/// What an export left behind is consistent with a clean run's bytes `clean`: nothing in place
/// before a checkpoint; a renamed output that is whole; or a `.partial` file whose first bytes,
/// as many as the checkpoint vouches for, are a clean run's. Returns the bytes vouched for.
pub fn assert_consistent(output: &Path, clean: &[u8]) -> u64 {
    let state = state_of(output);
    let mut name = output.file_name().expect("a file name").to_os_string();
    name.push(".partial");
    let partial = output.with_file_name(name);
    let Some(saved) = checkpoint(&state) else {
        assert!(
            !output.exists(),
            "{}: in place before any checkpoint",
            output.display()
        );
        return 0;
    };
    if saved["completed"] == true || (saved["written"] == true && !partial.exists()) {
        assert!(
            read(output) == clean,
            "{}: a renamed output differs from a clean run's",
            output.display()
        );
        return clean.len() as u64;
    }
    assert!(
        !output.exists(),
        "{}: in place before it was complete",
        output.display()
    );
    let good = saved["bytes"]
        .as_u64()
        .expect("the checkpoint counts bytes");
    let written = read(&partial);
    let vouched = usize::try_from(good).expect("a small file");
    assert!(
        written.len() >= vouched && written[..vouched] == clean[..vouched],
        "{}: the checkpoint vouches for {good} bytes, but the partial file's {} bytes are not \
         a clean run's",
        output.display(),
        written.len()
    );
    good
}
