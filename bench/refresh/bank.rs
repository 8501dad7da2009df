//! The sandbox bank the benchmark's refreshes talk to: in a child process (this binary's `bank`
//! subcommand), inside this process, or an external one, and how to move its clock a day on.

use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow};
use chrono::Utc;
use feedwatch::sandbox::{Clock, ManualClock, SandboxBank, SandboxConfig};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio_util::sync::CancellationToken;

use super::usage::memory_of;
use super::{BankPlace, DAY};

pub(super) fn sandbox_config(latency: Duration) -> SandboxConfig {
    SandboxConfig { latency, ..SandboxConfig::default() }
}

/// A day behind the real clock, so the repeat round can move it to today.
pub(super) fn bank_clock() -> ManualClock {
    ManualClock::new(Utc::now() - DAY)
}

pub(super) async fn serve_bank(listen: SocketAddr, latency_ms: u64) -> anyhow::Result<()> {
    let clock = bank_clock();
    let bank =
        Arc::new(SandboxBank::new(sandbox_config(Duration::from_millis(latency_ms)), Clock::Manual(clock.clone())));
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    println!("{}", json!({ "url": format!("http://{addr}"), "pid": std::process::id() }));
    let stop = CancellationToken::new();
    let server = tokio::spawn({
        let stop = stop.clone();
        let router = feedwatch::http::sandbox_bank::router(Arc::clone(&bank));
        async move { axum::serve(listener, router).with_graceful_shutdown(stop.cancelled_owned()).await }
    });
    let mut commands = BufReader::new(tokio::io::stdin()).lines();
    while let Some(command) = commands.next_line().await? {
        if command.trim() == "advance" {
            clock.set(clock.now() + DAY);
        }
        println!("{}", json!({ "clock": clock.now(), "exchanges": bank.exchanges() }));
    }
    bank.close();
    stop.cancel();
    server.await??;
    Ok(())
}

/// The sandbox bank the refreshes talk to, and how to move its clock and stop it.
pub(super) enum Bank {
    Child(Box<ChildBank>),
    InProcess { bank: Arc<SandboxBank>, clock: ManualClock, stop: CancellationToken },
    External,
}

/// The `bank` subcommand in a child process, talked to over its stdin and stdout.
pub(super) struct ChildBank {
    child: tokio::process::Child,
    pid: u32,
    replies: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
}

pub(super) async fn start_bank(place: BankPlace, latency: Duration) -> anyhow::Result<(String, Bank)> {
    match place {
        BankPlace::Child => {
            let mut child = tokio::process::Command::new(std::env::current_exe()?)
                .args(["bank", "--latency-ms", &latency.as_millis().to_string()])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .context("starting the sandbox bank process")?;
            let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
            let mut replies = BufReader::new(stdout).lines();
            let line = replies.next_line().await?.ok_or_else(|| anyhow!("the bank exited"))?;
            let started: serde_json::Value = serde_json::from_str(&line).context("the bank's first line")?;
            let url = started["url"].as_str().ok_or_else(|| anyhow!("no url from the bank"))?.to_owned();
            let pid = child.id().ok_or_else(|| anyhow!("the bank exited"))?;
            Ok((url, Bank::Child(Box::new(ChildBank { child, pid, replies }))))
        }
        BankPlace::InProcess => {
            let clock = bank_clock();
            let bank = Arc::new(SandboxBank::new(sandbox_config(latency), Clock::Manual(clock.clone())));
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            let addr = listener.local_addr()?;
            let stop = CancellationToken::new();
            let router = feedwatch::http::sandbox_bank::router(Arc::clone(&bank));
            let until = stop.clone();
            tokio::spawn(
                async move { axum::serve(listener, router).with_graceful_shutdown(until.cancelled_owned()).await },
            );
            Ok((format!("http://{addr}"), Bank::InProcess { bank, clock, stop }))
        }
    }
}

impl Bank {
    pub(super) fn pid(&self) -> Option<u32> {
        match self {
            Self::Child(child) => Some(child.pid),
            _ => None,
        }
    }

    pub(super) fn memory(&self) -> Option<(u64, u64)> {
        self.pid().and_then(|pid| memory_of(&format!("/proc/{pid}/status")))
    }

    /// Sends one command to the child bank and reads its answer: (exchanges so far).
    pub(super) async fn command(&mut self, command: &str) -> anyhow::Result<Option<u64>> {
        match self {
            Self::Child(bank) => {
                let ChildBank { child, replies, .. } = &mut **bank;
                let stdin = child.stdin.as_mut().ok_or_else(|| anyhow!("the bank's stdin is closed"))?;
                stdin.write_all(format!("{command}\n").as_bytes()).await?;
                stdin.flush().await?;
                let line = replies.next_line().await?.ok_or_else(|| anyhow!("the bank exited"))?;
                let reply: serde_json::Value = serde_json::from_str(&line)?;
                Ok(reply["exchanges"].as_u64())
            }
            Self::InProcess { bank, clock, .. } => {
                if command == "advance" {
                    clock.set(clock.now() + DAY);
                }
                Ok(Some(bank.exchanges()))
            }
            Self::External => Ok(None),
        }
    }

    pub(super) async fn exchanges(&mut self) -> anyhow::Result<Option<u64>> {
        self.command("stats").await
    }

    /// Moves the bank's clock one day on; false when it cannot (an external bank).
    pub(super) async fn advance_a_day(&mut self) -> anyhow::Result<bool> {
        Ok(self.command("advance").await?.is_some())
    }

    pub(super) async fn stop(self) {
        match self {
            Self::Child(bank) => {
                let mut child = bank.child;
                drop(child.stdin.take());
                let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
                let _ = child.kill().await;
            }
            Self::InProcess { bank, stop, .. } => {
                bank.close();
                stop.cancel();
            }
            Self::External => {}
        }
    }
}
