//! USP Endpoint IDs per Agent, stamped from the profile's identity (TR-369 §3.3 "Endpoint
//! Identifier"): by default the `os` authority scheme, `os::{oui}-{serial}`, so Agent N's ID
//! follows its serial number the way its CWMP DeviceId does.

use crate::model::identity::{Template, TemplateError};
use crate::model::{DeviceId, Model};

/// The default Agent endpoint ID template: TR-369 §3.3.2 `os::<OUI>-<SerialNumber>`.
pub const DEFAULT_TEMPLATE: &str = "os::{oui}-{serial}";

/// The default Controller endpoint ID (`--controller-id`) of the embedded Controller.
pub const DEFAULT_CONTROLLER_ID: &str = "self::cpe-sim-controller";

/// A compiled endpoint ID template (`{oui}`, `{serial}`, `{index}`, `{mac}` like every identity
/// template).
#[derive(Debug, Clone)]
pub struct EndpointTemplate(Template);

impl EndpointTemplate {
    /// Compiles `text`.
    ///
    /// # Errors
    /// An unknown or unclosed placeholder.
    pub fn compile(text: &str) -> Result<EndpointTemplate, TemplateError> {
        Template::compile(text, 0).map(EndpointTemplate)
    }

    /// Agent `id`'s endpoint ID.
    pub fn endpoint_id(&self, model: &Model, id: DeviceId) -> String {
        self.0.to_string_for(&model.identity, id)
    }
}

/// Whether `id` may be used as an endpoint ID and in an MQTT topic: TR-369 §3.3 allows
/// `authority-scheme:[authority-id]:instance-id` of printable characters; MQTT topics must not
/// hold the wildcards `+` and `#` (MQTT 5 §4.7.1), and a slash would split the topic level.
pub fn is_valid(id: &str) -> bool {
    !id.is_empty() && id.len() <= 256 && id.contains(':') && id.bytes().all(|b| b.is_ascii_graphic() && !matches!(b, b'+' | b'#' | b'/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validity() {
        assert!(is_valid("os::012345-CPE0001"));
        assert!(is_valid(DEFAULT_CONTROLLER_ID));
        assert!(!is_valid(""));
        assert!(!is_valid("no-colon"));
        assert!(!is_valid("os::a/b"));
        assert!(!is_valid("os::a+b"));
        assert!(!is_valid("os::a b"));
    }
}
