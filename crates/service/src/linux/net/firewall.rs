//! DNS-leak blocking (`block-outside-dns`, the WFP block of Windows) as one nftables table per
//! session (design §4), through the nftables crate's JSON interface.

use std::io;
use std::net::IpAddr;

use nftables::schema::Nftables;
use serde_json::{json, Value};

use super::helper;

fn rule(table: &str, expr: &Value) -> Value {
    json!({"add": {"rule": {"family": "inet", "table": table, "chain": "output", "expr": expr}}})
}

fn oifname_accept(table: &str, dev: &str) -> Value {
    rule(
        table,
        &json!([{"match": {"op": "==", "left": {"meta": {"key": "oifname"}}, "right": dev}}, {"accept": null}]),
    )
}

/// The table's JSON: an output chain that lets through the tun and loopback, then drops DNS
/// (or, when `dns_only` is false, everything except traffic to the VPN server).
pub(crate) fn ruleset(table: &str, tun: &str, dns_only: bool, server: Option<IpAddr>) -> Value {
    let mut cmds = vec![
        json!({"add": {"table": {"family": "inet", "name": table}}}),
        json!({"add": {"chain": {"family": "inet", "table": table, "name": "output",
            "type": "filter", "hook": "output", "prio": 0, "policy": "accept"}}}),
        oifname_accept(table, tun),
        oifname_accept(table, "lo"),
    ];
    if dns_only {
        for proto in ["udp", "tcp"] {
            cmds.push(rule(table, &json!([
                    {"match": {"op": "==", "left": {"payload": {"protocol": proto, "field": "dport"}}, "right": 53}},
                    {"counter": null},
                    {"drop": null}
                ]),
            ));
        }
    } else {
        if let Some(s) = server {
            let proto = if s.is_ipv4() { "ip" } else { "ip6" };
            cmds.push(rule(table, &json!([
                    {"match": {"op": "==", "left": {"payload": {"protocol": proto, "field": "daddr"}}, "right": s.to_string()}},
                    {"accept": null}
                ]),
            ));
        }
        cmds.push(rule(table, &json!([{"counter": null}, {"drop": null}])));
    }
    json!({ "nftables": cmds })
}

/// `nft` is run as a helper that dies with the service (see `helper.rs`); the nftables
/// crate's own runner cannot be told so.
async fn apply(v: &Value) -> io::Result<()> {
    // Checked against the crate's schema before nft sees it.
    let set: Nftables = serde_json::from_value(v.clone()).map_err(io::Error::other)?;
    let json = serde_json::to_string(&set).map_err(io::Error::other)?;
    helper::run("nft", &["-j", "-f", "-"], Some(&json))
        .await
        .map(drop)
}

/// Adds the session's table.
pub(crate) async fn add(
    table: &str,
    tun: &str,
    dns_only: bool,
    server: Option<IpAddr>,
) -> io::Result<()> {
    apply(&ruleset(table, tun, dns_only, server)).await
}

/// Whether the table exists.
pub(crate) async fn exists(table: &str) -> io::Result<bool> {
    let raw = helper::run("nft", &["-j", "list", "tables"], None).await?;
    let v: Value = serde_json::from_str(&raw).map_err(io::Error::other)?;
    Ok(v["nftables"].as_array().is_some_and(|objs| {
        objs.iter()
            .any(|o| o["table"]["name"] == table && o["table"]["family"] == "inet")
    }))
}

/// Deletes the session's table; a table that is already gone is fine.
pub(crate) async fn delete(table: &str) -> io::Result<()> {
    if !exists(table).await? {
        return Ok(());
    }
    apply(&json!({"nftables": [{"delete": {"table": {"family": "inet", "name": table}}}]})).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rulesets_parse_as_nftables_json() {
        for (dns_only, server) in [(true, None), (false, Some("10.200.0.1".parse().unwrap()))] {
            let v = ruleset("ovpnserv_1", "ovpns1", dns_only, server);
            let parsed: Nftables = serde_json::from_value(v.clone()).unwrap();
            let back = serde_json::to_value(&parsed).unwrap();
            let text = back.to_string();
            assert!(text.contains("\"ovpns1\""), "{text}");
            assert_eq!(text.contains("\"dport\""), dns_only, "{text}");
        }
    }
}
