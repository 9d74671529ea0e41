//! GetQueuedTransfers / GetAllQueuedTransfers (TR-069 §A.4.1.2, §A.4.1.7): the transfers the CPE
//! has accepted and not yet reported.

use bytes::BytesMut;

use crate::cwmp::envelope::{self, num, text_elem};

/// One queued transfer.
pub struct QueuedTransfer<'t> {
    pub command_key: &'t str,
    /// 1 not started, 2 in progress, 3 completed.
    pub state: u8,
    pub is_download: bool,
    pub file_type: &'t str,
    pub file_size: u32,
    pub target_file_name: &'t str,
}

/// Writes the response; `all` selects GetAllQueuedTransfers' richer struct.
pub fn write_response(out: &mut BytesMut, urn: &str, id: Option<&str>, all: bool, transfers: &[QueuedTransfer<'_>]) {
    let (method, item): (&[u8], &[u8]) = if all {
        (b"GetAllQueuedTransfersResponse", b"AllQueuedTransferStruct")
    } else {
        (b"GetQueuedTransfersResponse", b"QueuedTransferStruct")
    };
    envelope::open(out, urn, id);
    out.extend_from_slice(b"<cwmp:");
    out.extend_from_slice(method);
    out.extend_from_slice(b"><TransferList SOAP-ENC:arrayType=\"cwmp:");
    out.extend_from_slice(item);
    out.extend_from_slice(b"[");
    num(out, transfers.len());
    out.extend_from_slice(b"]\">");
    for t in transfers {
        out.extend_from_slice(b"<");
        out.extend_from_slice(item);
        out.extend_from_slice(b">");
        text_elem(out, "CommandKey", t.command_key);
        out.extend_from_slice(b"<State>");
        num(out, t.state);
        out.extend_from_slice(b"</State>");
        if all {
            text_elem(out, "IsDownload", if t.is_download { "true" } else { "false" });
            text_elem(out, "FileType", t.file_type);
            out.extend_from_slice(b"<FileSize>");
            num(out, t.file_size);
            out.extend_from_slice(b"</FileSize>");
            text_elem(out, "TargetFileName", t.target_file_name);
        }
        out.extend_from_slice(b"</");
        out.extend_from_slice(item);
        out.extend_from_slice(b">");
    }
    out.extend_from_slice(b"</TransferList></cwmp:");
    out.extend_from_slice(method);
    out.extend_from_slice(b">");
    envelope::close(out);
}
