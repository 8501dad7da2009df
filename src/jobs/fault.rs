//! Crash points for the kill tests: a worker process started with `FEEDWATCH_FAULT_AT=<point>`
//! announces on stderr when it reaches that point, so a test can SIGKILL it exactly there. Inert
//! unless the variable names the point; nothing else reads it. Handlers name their own points
//! (the refresh path: `refresh.exchanged`, `refresh.stored`); the queue's are below.

/// The variable that arms one point.
pub const ENV: &str = "FEEDWATCH_FAULT_AT";

/// The line written to stderr when an armed point is reached, followed by the point's name.
pub const ANNOUNCEMENT: &str = "fault point reached: ";

/// A job was claimed and is about to run; nothing of it has happened.
pub const CLAIMED: &str = "job.claimed";
/// A batch of completions is being recorded: the statement runs while the test's kill lands.
pub const COMPLETING: &str = "job.completing";

fn armed(point: &str) -> bool {
    std::env::var_os(ENV).is_some_and(|armed| armed == point)
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
