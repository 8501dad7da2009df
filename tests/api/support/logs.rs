//! Log capture: every instance of the test binary logs JSON lines into one buffer, which tests
//! read to check what was (and was not) logged.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

static LOGS: OnceLock<LogBuffer> = OnceLock::new();

/// Log lines of every instance in this process, as JSON, for tests that inspect them.
#[derive(Clone, Default)]
pub struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl Write for LogBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl LogBuffer {
    /// Everything written so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogBuffer {
    type Writer = LogBuffer;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// The process's log capture, installed as the tracing subscriber on first use.
pub(super) fn logs() -> &'static LogBuffer {
    LOGS.get_or_init(|| {
        let buffer = LogBuffer::default();
        tracing_subscriber::fmt()
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .with_env_filter("info,sqlx=warn")
            .with_writer(buffer.clone())
            .init();
        buffer
    })
}

/// Every captured log line that mentions `needle`.
pub fn log_lines_with(needle: &str) -> Vec<String> {
    all_logs().lines().filter(|line| line.contains(needle)).map(str::to_owned).collect()
}

/// All captured log text.
pub fn all_logs() -> String {
    logs().text()
}
