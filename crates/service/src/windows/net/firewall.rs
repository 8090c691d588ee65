//! DNS-leak blocking and `block-outside-dns` (spec §5.6.8): the filters of
//! `openvpnserv_core::windows::wfp::plan` in a dynamic WFP session under the `OpenVPN`
//! sublayer, so that they go when the session is closed or the service dies.

use openvpnserv_core::windows::net::Code;
use openvpnserv_core::windows::wfp::{self, Filter};
use openvpnserv_proto::codes::NO_ERROR;
use uuid::Uuid;

use crate::windows::sys::network::WfpEngine;

/// The `OpenVPN` sublayer's key.
fn sublayer_key() -> Uuid {
    Uuid::parse_str(wfp::SUBLAYER_KEY).unwrap_or_default()
}

/// Opens a dynamic session, ensures the sublayer, and adds `filters`. On a failure the
/// filters already added go with the session.
pub(super) fn open(filters: &[Filter]) -> Result<WfpEngine, Code> {
    let engine = WfpEngine::open_dynamic()?;
    let key = sublayer_key();
    let rc = engine.add_sublayer(&key, wfp::NAME, wfp::SUBLAYER_WEIGHT);
    if rc != NO_ERROR {
        engine.close();
        return Err(rc);
    }
    for f in filters {
        let rc = engine.add_filter(f, &key, wfp::NAME);
        if rc != NO_ERROR {
            engine.close();
            return Err(rc);
        }
    }
    Ok(engine)
}

/// Closes a session; its filters go with it.
pub(super) fn close(engine: WfpEngine) {
    engine.close();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sublayer_key_parses() {
        assert_eq!(
            sublayer_key().as_u128(),
            0x2f66_0d7e_6a37_11e6_a181_001e_8c6e_04a2
        );
    }
}
