//! Crash points for the kill tests: a worker process started with `FEEDWATCH_FAULT_AT=<point>`
//! announces on stderr when it reaches that point, so a test can SIGKILL it exactly there (or,
//! at a [`hold_at`] point, let it go on). Inert unless the variable names the point; nothing else
//! reads it. Handlers name their own points (the refresh path: `refresh.exchanged`,
//! `refresh.queued`, `refresh.stored`, `refresh.written`); the queue's are below.

/// The variable that arms points: one name, or several separated by commas.
pub const ENV: &str = "FEEDWATCH_FAULT_AT";

/// The line written to stderr when an armed point is reached, followed by the point's name.
pub const ANNOUNCEMENT: &str = "fault point reached: ";

/// A job was claimed and is about to run; nothing of it has happened.
pub const CLAIMED: &str = "job.claimed";
/// A batch of completions is being recorded: the statement runs while the test's kill lands.
pub const COMPLETING: &str = "job.completing";

fn armed(point: &str) -> bool {
    std::env::var(ENV).is_ok_and(|armed| armed.split(',').any(|name| name.trim() == point))
}

fn announce(point: &str) {
    use std::io::Write;
    // stderr is unbuffered: the line is out before anything after this point happens.
    let _ = writeln!(std::io::stderr(), "{ANNOUNCEMENT}{point}");
}

/// Announces `point` and waits there for the kill, when it is armed.
pub async fn pause_at(point: &str) {
    if armed(point) {
        announce(point);
        std::future::pending::<()>().await;
    }
}

/// Announces `point` and carries on, when it is armed: the kill lands somewhere in what follows.
pub fn mark(point: &str) {
    if armed(point) {
        announce(point);
    }
}

/// Announces `point` and waits there, when it is armed, until a line arrives on stdin: a test can
/// change the world around a paused worker (expire its lease, let another attempt finish) and
/// then let it carry on. Without stdin (closed, or at its end) it waits for the kill.
pub async fn hold_at(point: &str) {
    use tokio::io::AsyncReadExt;
    if !armed(point) {
        return;
    }
    announce(point);
    // A byte at a time: a buffered reader could swallow the line meant for the next waiter.
    let mut stdin = tokio::io::stdin();
    loop {
        match stdin.read_u8().await {
            Ok(b'\n') => return,
            Ok(_) => {}
            Err(_) => std::future::pending::<()>().await,
        }
    }
}
