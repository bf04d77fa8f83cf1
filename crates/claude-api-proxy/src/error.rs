//! The error type and formatting shared by the forwarding route and the body wrappers, kept
//! apart so that neither imports the other.

/// Errors of the request body on its way upstream, and of the proxy's own timeouts.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// An error and its sources on one line (hyper's Display alone hides the cause).
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}
