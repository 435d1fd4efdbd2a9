//! Any bytes through the importer's record reader, and each record through planning: no panic.
//!
//! The reader takes NDJSON, CSV, JSON arrays and gzip; planning validates and normalises a
//! record and works out its update, without a network.
//!
//! The first four bytes choose how to read, the rest is the input:
//!
//! - byte 0: the file name (which decides the format under `auto`), the format, and whether
//!   CSV cells are unescaped;
//! - byte 1: `max_record_bytes` (small caps reach the `too_large` paths), or the default;
//! - byte 2: the plan options (mode, match, passwords, metadata strategy);
//! - byte 3: how many bytes each `read` returns, so records straddle buffer refills.
//!
//! Checked beyond "no panic":
//!
//! - the reader reports a concrete format, never `auto`;
//! - records come in input order (lines never go back), a `read_error` is the last record, and
//!   an error's `raw` text is at most `max_record_bytes` long;
//! - for each record that plans, the update it would send to the user before it (the previous
//!   record, or a fixed user) is idempotent: once applied, planning the same record against
//!   the result sends nothing. That is what makes a re-run of an import a no-op.

#![no_main]

use std::io::{self, Read};

use auth0_bulk::import::plan::{
    self, Engine, MatchBy, MetadataStrategy, Mode, Passwords, PlanOptions, User,
};
use auth0_bulk::import::read::{self, InputFormat, ReadOptions, code};
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};

const NAMES: [&str; 8] = [
    "input",
    "users.ndjson",
    "users.csv",
    "users.json",
    "users.jsonl.gz",
    "users.csv.gz",
    "users.json.gz",
    "-",
];
const FORMATS: [InputFormat; 4] = [
    InputFormat::Auto,
    InputFormat::Ndjson,
    InputFormat::Csv,
    InputFormat::Json,
];

/// A reader that hands out at most `step` bytes per call.
struct Trickle {
    data: Vec<u8>,
    at: usize,
    step: usize,
}

impl Read for Trickle {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.step).min(self.data.len() - self.at);
        buf[..n].copy_from_slice(&self.data[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

fn plan_options(byte: u8) -> PlanOptions {
    let byte = usize::from(byte);
    PlanOptions {
        mode: [Mode::Create, Mode::Update, Mode::Upsert][byte % 3],
        match_by: [MatchBy::UserId, MatchBy::Email][byte / 3 % 2],
        connection: (byte & 0x40 == 0).then(|| "Username-Password-Authentication".to_owned()),
        passwords: [
            Passwords::None,
            Passwords::Random,
            Passwords::Field("password".to_owned()),
        ][byte / 6 % 3]
            .clone(),
        metadata: [
            MetadataStrategy::Merge,
            MetadataStrategy::Deep,
            MetadataStrategy::Replace,
        ][byte / 18 % 3],
        engine: [Engine::Api, Engine::Job][byte / 54 % 2],
    }
}

/// The user a first record is planned against: a typical exported user.
fn fixed_user() -> User {
    let Value::Object(user) = json!({
        "user_id": "auth0|65f0c1d2e3a4b5c6d7e8f901",
        "email": "jane.doe@example.com",
        "email_verified": true,
        "name": "Jane Doe",
        "nickname": "jane",
        "blocked": false,
        "created_at": "2024-01-31T23:59:59.999Z",
        "identities": [{"connection": "Username-Password-Authentication", "provider": "auth0",
                        "user_id": "65f0c1d2e3a4b5c6d7e8f901", "isSocial": false}],
        "user_metadata": {"theme": "dark", "address": {"city": "Paris", "zip": "75001"},
                          "tags": ["a"], "n": 1.0, "nothing": null},
        "app_metadata": {"plan": "gold", "roles": ["admin"]}
    }) else {
        unreachable!("an object")
    };
    user
}

fuzz_target!(|data: &[u8]| {
    let [how, cap, plan_byte, step, input @ ..] = data else {
        return;
    };
    let name = NAMES[usize::from(how & 7)];
    let options = ReadOptions {
        format: FORMATS[usize::from(how >> 3 & 3)],
        unescape_formulas: how & 0x20 != 0,
        max_record_bytes: match cap {
            0..=127 => 1 + usize::from(*cap) * 8,
            _ => 0,
        },
    };
    let cap = match options.max_record_bytes {
        0 => read::DEFAULT_MAX_RECORD_BYTES,
        cap => cap,
    };
    let reader = Trickle {
        data: input.to_vec(),
        at: 0,
        step: match step {
            0 => usize::MAX,
            step => usize::from(step & 0x3f),
        }
        .max(1),
    };
    let Ok((format, records)) = read::from_reader(reader, name, &options) else {
        return;
    };
    assert_ne!(format, InputFormat::Auto, "the reader decides a format");

    let plan_options = plan_options(*plan_byte);
    let mut current = fixed_user();
    let mut last_line = 0;
    let mut ended = false;
    for record in records {
        assert!(!ended, "a read_error is the last record");
        assert!(
            record.line >= last_line,
            "line {} after line {last_line}",
            record.line
        );
        last_line = record.line;
        let object = match record.result {
            Ok(object) => object,
            Err(error) => {
                ended = error.code == code::READ_ERROR;
                if let Some(raw) = &error.raw {
                    assert!(raw.len() <= cap, "raw text of {} bytes", raw.len());
                }
                continue;
            }
        };
        if let Ok(planned) = plan::plan(&object, &plan_options) {
            let strategy = plan_options.metadata;
            if let Some(body) = plan::update_body(&current, &planned, strategy) {
                let _ = plan::check_patch(&body);
                let after = plan::apply_patch(&current, &body);
                assert!(
                    !plan::diff(&current, &after).is_empty(),
                    "the body {body} changes nothing"
                );
                assert_eq!(
                    plan::update_body(&after, &planned, strategy),
                    None,
                    "a second run sends more after {body}"
                );
            }
        }
        current = object;
    }
});
