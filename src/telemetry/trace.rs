//! W3C Trace Context (`traceparent`): one trace id follows a request into the jobs it enqueues
//! and out to the banks and webhook receivers they call.
//!
//! The current context is a task-local, set around a request's handling and around each job's
//! run: the code in between (enqueueing, outbound HTTP) asks for it instead of every signature
//! carrying it. Outside such a scope there is no context and nothing is propagated.

use std::fmt;
use std::future::Future;

pub const HEADER: &str = "traceparent";

/// One position in a trace: the trace it belongs to and the span that made the call.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TraceContext {
    trace_id: [u8; 16],
    parent_id: [u8; 8],
    flags: u8,
}

tokio::task_local! {
    static CURRENT: TraceContext;
}

impl TraceContext {
    /// A new trace, for work that arrived without one (or with one the spec says to ignore).
    pub fn new_root() -> Self {
        Self { trace_id: nonzero(rand::random()), parent_id: nonzero(rand::random()), flags: 0 }
    }

    /// Reads a `traceparent` value as the W3C specification says: version `00` is exactly
    /// `00-<32 hex>-<16 hex>-<2 hex>`; a later version may append `-…` fields, which are not
    /// ours to read; version `ff`, upper-case hex and all-zero ids are invalid. `None` means
    /// "ignore the header", never an error.
    pub fn parse(value: &str) -> Option<Self> {
        let bytes = value.as_bytes();
        if bytes.len() < 55 || !value.is_ascii() {
            return None;
        }
        let version = hex::<1>(&value[0..2])?[0];
        let exact = bytes.len() == 55;
        let extended = version != 0 && bytes.get(55) == Some(&b'-');
        if version == 0xff || !(exact || extended) || bytes[2] != b'-' || bytes[35] != b'-' || bytes[52] != b'-' {
            return None;
        }
        let trace_id = hex::<16>(&value[3..35])?;
        let parent_id = hex::<8>(&value[36..52])?;
        let flags = hex::<1>(&value[53..55])?[0];
        if trace_id == [0; 16] || parent_id == [0; 8] {
            return None;
        }
        Some(Self { trace_id, parent_id, flags })
    }

    /// The context for a call this process makes: the same trace, a new span id. Only the
    /// sampled flag is kept, as version 00 defines no other.
    pub fn child(&self) -> Self {
        Self { trace_id: self.trace_id, parent_id: nonzero(rand::random()), flags: self.flags & 0x01 }
    }

    /// The 32 hex digits that name the trace (on log lines).
    pub fn trace_id(&self) -> String {
        to_hex(&self.trace_id)
    }

    /// The `traceparent` header value (version 00).
    pub fn header(&self) -> String {
        format!("00-{}-{}-{:02x}", to_hex(&self.trace_id), to_hex(&self.parent_id), self.flags)
    }

    /// Runs `work` with this context current.
    pub fn scope<F: Future>(self, work: F) -> impl Future<Output = F::Output> {
        CURRENT.scope(self, work)
    }
}

/// The context of the request or job this task is working for, if any.
pub fn current() -> Option<TraceContext> {
    CURRENT.try_with(|context| *context).ok()
}

/// The `traceparent` for an outbound call made now: a child of the current context.
pub fn outbound_header() -> Option<String> {
    current().map(|context| context.child().header())
}

impl fmt::Debug for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.header())
    }
}

fn hex<const N: usize>(text: &str) -> Option<[u8; N]> {
    let digits = text.as_bytes();
    if digits.len() != 2 * N {
        return None;
    }
    let mut out = [0; N];
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        *byte = (digit(pair[0])? << 4) | digit(pair[1])?;
    }
    Some(out)
}

/// Lower-case only: the specification makes upper-case hex invalid.
fn digit(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        _ => None,
    }
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// An all-zero id is invalid; the chance is negligible, but the fix costs one byte.
fn nonzero<const N: usize>(mut bytes: [u8; N]) -> [u8; N] {
    if bytes == [0; N] {
        bytes[N - 1] = 1;
    }
    bytes
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_valid_header_round_trips() {
        let context = TraceContext::parse(VALID).unwrap();
        assert_eq!(context.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(context.header(), VALID);
    }

    #[test]
    fn a_child_keeps_the_trace_and_takes_a_new_span() {
        let parent = TraceContext::parse(VALID).unwrap();
        let child = TraceContext::parse(&parent.child().header()).unwrap();
        assert_eq!(child.trace_id(), parent.trace_id());
        assert_ne!(child.header(), parent.header());
        assert!(child.header().ends_with("-01"));
    }

    #[test]
    fn invalid_headers_are_ignored() {
        for value in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "0x-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01",
            "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
        ] {
            assert_eq!(TraceContext::parse(value), None, "{value:?}");
        }
    }

    #[test]
    fn a_later_version_is_read_for_its_version_00_fields() {
        let value = "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-the-future-adds";
        assert_eq!(TraceContext::parse(value).unwrap().trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(TraceContext::parse(&value[..55]).unwrap().trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
    }

    #[tokio::test]
    async fn the_context_is_current_inside_its_scope_only() {
        assert_eq!(current(), None);
        let context = TraceContext::parse(VALID).unwrap();
        let inside = context.scope(async { current() }).await;
        assert_eq!(inside, Some(context));
        assert_eq!(current(), None);
    }
}
