//! libbpf's messages: routed into `tracing` (visible with -v) and the last
//! lines kept, so that a load error can carry the verifier's explanation.
use std::collections::VecDeque;
use std::sync::Mutex;

use libbpf_rs::PrintLevel;

const KEEP_LINES: usize = 400;
static RECENT: Mutex<VecDeque<String>> = Mutex::new(VecDeque::new());

fn on_libbpf_print(level: PrintLevel, msg: String) {
    let msg = msg.trim_end().to_string();
    match level {
        PrintLevel::Warn => tracing::debug!(target: "libbpf", "{msg}"),
        PrintLevel::Info | PrintLevel::Debug => tracing::trace!(target: "libbpf", "{msg}"),
    }
    if let Ok(mut recent) = RECENT.lock() {
        if recent.len() == KEEP_LINES {
            recent.pop_front();
        }
        recent.push_back(msg);
    }
}

/// Route libbpf's print callback into `tracing` and keep its recent lines.
pub fn route_libbpf_logs() {
    libbpf_rs::set_print(Some((PrintLevel::Debug, on_libbpf_print)));
}

/// Take the lines kept since the last call.
pub(crate) fn take() -> String {
    match RECENT.lock() {
        Ok(mut recent) => recent.drain(..).collect::<Vec<_>>().join("\n"),
        Err(_) => String::new(),
    }
}
