//! What the fake openvpn sends on the channel, and what it expects back.
//!
//! The scenario file `fake-openvpn.txt` in openvpn's working directory says which numbering
//! to use, whether to end with an oversized message, and which exit code to return. The fake
//! writes `fake-openvpn.out` next to it: its command line, its stdin, and one line per ack.

use std::net::Ipv4Addr;

use openvpnserv_proto::channel::{
    AddressMsg, Codec, CreateAdapterMsg, DnsCfgMsg, Envelope, FixedStr, FlushNeighborsMsg,
    InetAddr, Interface, NrptCfgMsg, Request, Revision, RouteMsg, SetMtuMsg, WfpBlockMsg,
    WinsCfgMsg, AF_INET, UNKNOWN_MESSAGE_ID,
};
use openvpnserv_proto::codes::{ERROR_MESSAGE_DATA, ERROR_MESSAGE_TYPE};

/// Name of the scenario file in the working directory.
pub const SCENARIO_FILE: &str = "fake-openvpn.txt";
/// Name of the record the fake writes.
pub const RECORD_FILE: &str = "fake-openvpn.out";

/// A scenario.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scenario {
    /// The numbering to speak.
    pub revision: Revision,
    /// Send the messages of [`messages`].
    pub send_messages: bool,
    /// Leave out the `del_*` messages, so the service's own undo must clean up.
    pub skip_deletes: bool,
    /// Finish with a message one byte larger than any request (CVE-2024-27459).
    pub oversize: bool,
    /// Stay alive (after the messages) until the channel breaks, at most this many ms.
    pub linger_ms: u64,
    /// Exit code.
    pub exit_code: u32,
    /// A handle value of the service's process that must not have been inherited; the fake
    /// records whether it is valid in its own process (`foreign_handle valid|invalid`).
    pub foreign_handle: u64,
    /// Send only the messages of these names (all when empty).
    pub only: Vec<String>,
}

impl Default for Scenario {
    fn default() -> Self {
        Self {
            revision: Revision::V27,
            send_messages: true,
            skip_deletes: false,
            oversize: false,
            linger_ms: 0,
            exit_code: 0,
            foreign_handle: 0,
            only: Vec::new(),
        }
    }
}

impl Scenario {
    /// Whether the scenario sends the message called `name`.
    pub fn sends(&self, name: &str) -> bool {
        (self.only.is_empty() || self.only.iter().any(|n| n == name))
            && !(self.skip_deletes && name.starts_with("del_"))
    }

    /// The file's text.
    pub fn to_text(&self) -> String {
        format!(
            "revision {}\nmessages {}\nskip_deletes {}\noversize {}\nlinger_ms {}\nexit {}\nforeign_handle {}\nonly {}\n",
            if self.revision == Revision::V26 {
                "2.6"
            } else {
                "2.7"
            },
            u8::from(self.send_messages),
            u8::from(self.skip_deletes),
            u8::from(self.oversize),
            self.linger_ms,
            self.exit_code,
            self.foreign_handle,
            if self.only.is_empty() {
                "-".to_owned()
            } else {
                self.only.join(",")
            }
        )
    }

    /// Parses the file's text (unknown lines are ignored; missing ones keep defaults).
    pub fn parse(text: &str) -> Self {
        let mut s = Self::default();
        for line in text.lines() {
            let mut it = line.split_whitespace();
            let (Some(key), Some(value)) = (it.next(), it.next()) else {
                continue;
            };
            match key {
                "revision" => {
                    s.revision = if value == "2.6" {
                        Revision::V26
                    } else {
                        Revision::V27
                    }
                }
                "messages" => s.send_messages = value == "1",
                "skip_deletes" => s.skip_deletes = value == "1",
                "oversize" => s.oversize = value == "1",
                "linger_ms" => s.linger_ms = value.parse().unwrap_or(0),
                "exit" => s.exit_code = value.parse().unwrap_or(0),
                "foreign_handle" => s.foreign_handle = value.parse().unwrap_or(0),
                "only" if value != "-" => {
                    s.only = value.split(',').map(str::to_owned).collect();
                }
                _ => {}
            }
        }
        s
    }
}

/// One message to send and the ack it should get.
#[derive(Debug, Clone)]
pub struct Step {
    /// A name for the record.
    pub name: String,
    /// The bytes.
    pub bytes: Vec<u8>,
    /// Expected `message_id` in the ack.
    pub ack_id: i32,
    /// Expected `error_number`, if the test knows it up front (else recorded only).
    pub ack_error: Option<u32>,
}

fn tun() -> Interface {
    Interface::by_index(7, "tun0").expect("fits")
}

fn v4(a: [u8; 4]) -> InetAddr {
    InetAddr::v4(Ipv4Addr::from(a))
}

/// Every request kind the numbering has a handler for, with ids 1, 2, …, then the malformed
/// cases of spec §12 (which get fixed acks).
#[allow(
    clippy::too_many_lines,
    reason = "one entry per message kind reads best as one table"
)]
pub fn messages(revision: Revision) -> Vec<Step> {
    let codec = Codec::new(openvpnserv_proto::channel::Arch::NATIVE, revision);
    let address = AddressMsg {
        family: AF_INET,
        address: v4([10, 8, 0, 2]),
        prefix_len: 24,
        iface: tun(),
    };
    let route = RouteMsg {
        family: AF_INET,
        prefix: v4([192, 168, 50, 0]),
        prefix_len: 24,
        gateway: v4([10, 8, 0, 1]),
        iface: tun(),
        metric: -1,
    };
    let mut dns_addr = [InetAddr::default(); 4];
    dns_addr[0] = v4([10, 8, 0, 1]);
    let dns = DnsCfgMsg {
        iface: Interface::by_name("tun0").expect("fits"),
        domains: FixedStr::new("vpn.example").expect("fits"),
        family: AF_INET,
        addr_len: 1,
        addr: dns_addr,
    };
    let mut nrpt_addr: [FixedStr<48>; 8] = Default::default();
    nrpt_addr[0] = FixedStr::new("10.8.0.1").expect("fits");
    let nrpt = NrptCfgMsg {
        iface: Interface::by_name("tun0").expect("fits"),
        addresses: nrpt_addr,
        resolve_domains: FixedStr::new(".corp.example").expect("fits"),
        search_domains: FixedStr::default(),
        flags: 0,
    };
    let wins = WinsCfgMsg {
        iface: tun(),
        addr_len: 1,
        addr: dns_addr,
    };
    let wfp = WfpBlockMsg {
        flags: 1,
        iface: tun(),
    };
    let mut requests = vec![
        ("add_address", Request::AddAddress(address.clone())),
        ("add_route", Request::AddRoute(route.clone())),
        ("add_dns_cfg", Request::AddDnsCfg(dns.clone())),
        ("add_wins_cfg", Request::AddWinsCfg(wins.clone())),
        (
            "set_mtu",
            Request::SetMtu(SetMtuMsg {
                iface: tun(),
                family: AF_INET,
                mtu: 1400,
            }),
        ),
        (
            "flush_neighbors",
            Request::FlushNeighbors(FlushNeighborsMsg {
                family: AF_INET,
                iface: tun(),
            }),
        ),
        ("enable_dhcp", Request::EnableDhcp(tun())),
        ("register_dns", Request::RegisterDns),
    ];
    if revision == Revision::V27 {
        requests.extend([
            ("add_wfp_block", Request::AddWfpBlock(wfp.clone())),
            ("del_wfp_block", Request::DelWfpBlock(wfp)),
            ("add_nrpt_cfg", Request::AddNrptCfg(nrpt.clone())),
            ("del_nrpt_cfg", Request::DelNrptCfg(nrpt)),
            (
                "create_adapter",
                Request::CreateAdapter(CreateAdapterMsg { adapter_type: 0 }),
            ),
        ]);
    } else {
        requests.extend([
            ("add_block_dns", Request::AddBlockDns(tun())),
            ("del_block_dns", Request::DelBlockDns(tun())),
        ]);
    }
    requests.extend([
        ("del_wins_cfg", Request::DelWinsCfg(wins)),
        ("del_dns_cfg", Request::DelDnsCfg(dns)),
        ("del_route", Request::DelRoute(route.clone())),
        ("del_address", Request::DelAddress(address)),
    ]);
    let mut steps: Vec<Step> = requests
        .into_iter()
        .enumerate()
        .map(|(i, (name, request))| {
            let id = i as i32 + 1;
            Step {
                name: name.to_owned(),
                bytes: codec
                    .encode(&Envelope {
                        message_id: id,
                        request,
                    })
                    .expect("numbering has it"),
                ack_id: id,
                ack_error: None,
            }
        })
        .collect();
    let next = steps.len() as i32 + 1;
    // The malformed cases of spec §12.
    let mut long_route = codec
        .encode(&Envelope {
            message_id: next,
            request: Request::AddRoute(route),
        })
        .expect("numbering has it");
    long_route.push(0);
    let header = codec.arch.header_size();
    let size_at = openvpnserv_proto::channel::layout::header::size(codec.arch);
    let new_size = (long_route.len() as u64).to_le_bytes();
    long_route[size_at..size_at + codec.arch.pointer_size()]
        .copy_from_slice(&new_size[..codec.arch.pointer_size()]);
    let mut unknown = vec![0u8; header];
    unknown[..4].copy_from_slice(&99u32.to_le_bytes());
    unknown[size_at..size_at + codec.arch.pointer_size()]
        .copy_from_slice(&(header as u64).to_le_bytes()[..codec.arch.pointer_size()]);
    let id_at = openvpnserv_proto::channel::layout::header::message_id(codec.arch);
    unknown[id_at..id_at + 4].copy_from_slice(&(next + 1).to_le_bytes());
    let mut lying = unknown.clone();
    lying[size_at] = 0xff;
    steps.extend([
        Step {
            name: "route_one_byte_long".into(),
            bytes: long_route,
            ack_id: next,
            ack_error: Some(ERROR_MESSAGE_DATA),
        },
        Step {
            name: "type_99".into(),
            bytes: unknown,
            ack_id: next + 1,
            ack_error: Some(ERROR_MESSAGE_TYPE),
        },
        Step {
            name: "size_field_wrong".into(),
            bytes: lying,
            ack_id: UNKNOWN_MESSAGE_ID,
            ack_error: Some(ERROR_MESSAGE_DATA),
        },
        Step {
            name: "eight_bytes".into(),
            bytes: vec![0; 8],
            ack_id: UNKNOWN_MESSAGE_ID,
            ack_error: Some(ERROR_MESSAGE_DATA),
        },
    ]);
    steps
}

/// One line of the record per ack: `ack <name> id=<id> error=<code> ok=<0|1>`, where `ok`
/// says the ack had the right size, type, size field and message id.
pub fn ack_line(name: &str, id: i32, error: u32, ok: bool) -> String {
    format!("ack {name} id={id} error={error} ok={}", u8::from(ok))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenario_round_trip() {
        let s = Scenario {
            revision: Revision::V26,
            send_messages: false,
            skip_deletes: true,
            oversize: true,
            linger_ms: 5,
            exit_code: 3,
            foreign_handle: 0x1234,
            only: vec!["set_mtu".into(), "add_route".into()],
        };
        assert_eq!(Scenario::parse(&s.to_text()), s);
    }

    #[test]
    fn every_message_decodes_by_the_service_rules() {
        for revision in [Revision::V26, Revision::V27] {
            let codec = Codec::new(openvpnserv_proto::channel::Arch::NATIVE, revision);
            for step in messages(revision) {
                match codec.decode_request(&step.bytes) {
                    Ok(env) => assert_eq!(env.message_id, step.ack_id, "{}", step.name),
                    Err(e) => {
                        let ack = e.ack().expect("no message is too large");
                        assert_eq!(Some(ack.error_number), step.ack_error, "{}", step.name);
                        assert_eq!(ack.message_id, step.ack_id, "{}", step.name);
                    }
                }
            }
        }
    }
}
