//! Who holds a data directory, read from its `postmaster.pid` the way PostgreSQL's own lock
//! check reads it, plus the two cases that check gets wrong: a postmaster that died but was not
//! yet reaped (a zombie answers `kill(pid, 0)`), and a pid the kernel has since given to an
//! unrelated process. Both leave a lock file PostgreSQL refuses to start over.

use std::path::Path;

/// What `postmaster.pid` says about the directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Holder {
    /// No lock file: the directory is free.
    Free,
    /// A lock file whose postmaster is gone and whose shared memory nobody uses any more:
    /// removing it is what PostgreSQL would do itself if it could tell.
    Stale,
    /// A live postmaster, or a dead one's children still attached to its shared memory (they
    /// exit on their own within moments of noticing).
    Busy(u32),
}

const LOCK_FILE: &str = "postmaster.pid";

pub(super) fn holder(data_dir: &Path) -> Holder {
    let Ok(text) = std::fs::read_to_string(data_dir.join(LOCK_FILE)) else {
        return Holder::Free;
    };
    let mut lines = text.lines();
    let Some(pid) = lines.next().and_then(|line| line.trim().parse::<u32>().ok()) else {
        // Written this instant by a starting postmaster, or torn: treat as busy and look again.
        return Holder::Busy(0);
    };
    if is_live_postgres(pid) {
        return Holder::Busy(pid);
    }
    // Line 7 holds the SysV key and id of the interlock segment; backends keep it attached.
    let shmid = lines.nth(5).and_then(|line| line.split_whitespace().nth(1)).and_then(|id| id.parse::<u64>().ok());
    match shmid.map(attached_processes) {
        Some(attached) if attached > 0 => Holder::Busy(pid),
        _ => Holder::Stale,
    }
}

/// Removes a stale lock file; a missing one is fine.
pub(super) fn remove_stale(data_dir: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(data_dir.join(LOCK_FILE)) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(error),
        _ => Ok(()),
    }
}

/// A running (not zombie) process named `postgres`.
fn is_live_postgres(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // `pid (comm) state …`: the name may hold spaces or parentheses, the state follows the last `)`.
    let Some((name, rest)) = stat.split_once(" (").and_then(|(_, rest)| rest.rsplit_once(") ")) else {
        return false;
    };
    let zombie = rest.starts_with('Z') || rest.starts_with('X');
    !zombie && name == "postgres"
}

/// How many processes have the SysV segment attached (0 when it no longer exists).
fn attached_processes(shmid: u64) -> u64 {
    let Ok(table) = std::fs::read_to_string("/proc/sysvipc/shm") else {
        return 0;
    };
    // Columns: key shmid perms size cpid lpid nattch …
    table
        .lines()
        .skip(1)
        .map(|line| line.split_whitespace().collect::<Vec<_>>())
        .find(|columns| columns.get(1).and_then(|id| id.parse::<u64>().ok()) == Some(shmid))
        .and_then(|columns| columns.get(6).and_then(|count| count.parse().ok()))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn dir_with(lock: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("fw-lock-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(LOCK_FILE), lock).unwrap();
        dir
    }

    #[test]
    fn a_directory_without_a_lock_file_is_free() {
        let dir = std::env::temp_dir().join(format!("fw-lock-{}", uuid::Uuid::new_v4().simple()));
        assert_eq!(holder(&dir), Holder::Free);
    }

    #[test]
    fn a_lock_file_naming_a_process_that_is_not_postgres_is_stale() {
        // This test process is alive but is not a postmaster: a recycled pid.
        let dir =
            dir_with(&format!("{}\n/data\n1\n5432\n\n127.0.0.1\n  5432001  999999999\nready\n", std::process::id()));
        assert_eq!(holder(&dir), Holder::Stale);
        remove_stale(&dir).unwrap();
        assert_eq!(holder(&dir), Holder::Free);
        remove_stale(&dir).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_torn_lock_file_is_looked_at_again_rather_than_removed() {
        let dir = dir_with("");
        assert_eq!(holder(&dir), Holder::Busy(0));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
