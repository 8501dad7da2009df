//! `refresh_bench parse`: what reading the bank's reply costs the refresher, without HTTP or a
//! database. The sandbox bank answers, in this process, the statement request a repeat refresh
//! sends (14 days, the three known accounts) and the one a first refresh sends (90 days); each
//! reply is then read `n` times by `ofx::parse`, the reader the Direct Connect provider uses.
//!
//! The same run times a floor on the same bytes: a UTF-8 check and a count of the tags, the
//! least any reader of the text does. The ratio of the two is the figure to compare between
//! builds; the microseconds move with the machine.

use std::hint::black_box;
use std::time::Instant;

use anyhow::{anyhow, bail};
use chrono::{DateTime, TimeDelta, Utc};
use feedwatch::ofx::{self, OfxRequest, ParseOptions, Password, RequestMessage, SignonRequest};
use feedwatch::sandbox::{Clock, Outcome, SandboxBank, SandboxConfig, ledger};
use serde_json::json;

pub fn run(n: u32) -> anyhow::Result<()> {
    let bank = SandboxBank::new(SandboxConfig::default(), Clock::System);
    let healthy = bank.institutions().iter().find(|i| i.slug == "healthy").ok_or_else(|| anyhow!("no healthy"))?;
    let now = ledger::epoch() + TimeDelta::days(200) + TimeDelta::hours(12);
    let mut report = serde_json::Map::new();
    for (name, days) in [("repeat", 14), ("first", 90)] {
        let request = statement_request(healthy, now, TimeDelta::days(days));
        let body = match bank.respond(healthy.slug, ofx::write_request(&request).as_bytes(), now).outcome {
            Outcome::Ofx(body) => body.into_bytes(),
            other => bail!("the sandbox bank did not answer with OFX: {other:?}"),
        };
        let transactions = ofx::parse(&body, &ParseOptions::default())?
            .statements
            .iter()
            .map(|statement| statement.transactions.len())
            .sum::<usize>();
        let parse = per_read(n, || Ok(ofx::parse(black_box(&body), &ParseOptions::default())?))?;
        let floor = per_read(n, || tags_in(black_box(&body)))?;
        report.insert(
            name.to_owned(),
            json!({
                "bytes": body.len(),
                "transactions": transactions,
                "parse_us": round(parse * 1e6),
                "floor_us": round(floor * 1e6),
                "parse_over_floor": round(parse / floor),
            }),
        );
    }
    report.insert("probe".into(), json!("ofx_parse"));
    report.insert("reads".into(), json!(n));
    println!("{}", serde_json::Value::Object(report));
    Ok(())
}

/// Seconds per call of `read`, over `n` calls after `n / 10` to warm the caches and allocator.
fn per_read<T>(n: u32, mut read: impl FnMut() -> anyhow::Result<T>) -> anyhow::Result<f64> {
    for _ in 0..n / 10 {
        black_box(read()?);
    }
    let started = Instant::now();
    for _ in 0..n {
        black_box(read()?);
    }
    Ok(started.elapsed().as_secs_f64() / f64::from(n.max(1)))
}

fn tags_in(body: &[u8]) -> anyhow::Result<usize> {
    Ok(std::str::from_utf8(body)?.bytes().filter(|&byte| byte == b'<').count())
}

/// The request a refresh of the `healthy` bank's three accounts sends, its window `window` long.
fn statement_request(
    institution: &feedwatch::sandbox::Institution,
    now: DateTime<Utc>,
    window: TimeDelta,
) -> OfxRequest {
    let accounts = ledger::accounts(SandboxConfig::default().seed, institution.slug, "user_good");
    let start = (now - window).fixed_offset();
    let messages = accounts
        .iter()
        .enumerate()
        .map(|(n, account)| RequestMessage::statement(&account.ofx_account(institution.bank_id), n.to_string(), start))
        .collect();
    OfxRequest {
        version: institution.version,
        client_date: now.fixed_offset(),
        signon: SignonRequest {
            user_id: "user_good".into(),
            password: Password::new("pass_good"),
            language: "ENG".into(),
            org: Some(institution.org.to_owned()),
            fid: Some(institution.fid.to_owned()),
            app_id: "QWIN".into(),
            app_ver: "2700".into(),
            client_uid: None,
        },
        messages,
    }
}

fn round(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}
