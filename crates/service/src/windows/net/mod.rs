//! The real [`WinNet`]: the operating system's network layer (spec §5.6). Only mechanics live
//! here; what to change and when is decided in `openvpnserv_core::windows::session`.
//!
//! * [`registry`]: the DNS and NRPT values under `HKLM` (the [`Registry`] half).
//! * [`iphelper`]: interfaces, addresses, routes, neighbours, metrics and MTU.
//! * [`firewall`]: the WFP block filters in a dynamic session.
//! * [`dns`]: telling the DNS client, `ipconfig /registerdns`, other interfaces' DNS.
//! * [`helper`]: helper programs (`netsh`, `ipconfig`, `tapctl`).
//!
//! Wine lacks the IP Helper "2" functions and WFP, so those are compiled here and their
//! callers are tested with the recording fake.
//!
//! [`Registry`]: openvpnserv_core::windows::net::Registry

use std::time::Duration;

use openvpnserv_core::windows::net::{AddressRow, Code, InterfaceDns, RouteRow, WinNet};
use openvpnserv_core::windows::wfp::Filter;

use super::server::NetFactory;
use super::sys::network::WfpEngine;

mod dns;
mod firewall;
mod helper;
mod iphelper;
mod registry;

/// Makes [`RealNet`]s.
#[derive(Debug, Clone, Copy, Default)]
pub struct RealNetFactory;

impl NetFactory for RealNetFactory {
    type Net = RealNet;
    fn make(&self) -> RealNet {
        RealNet
    }
}

/// The operating system's network layer.
#[derive(Debug, Clone, Copy, Default)]
pub struct RealNet;

impl WinNet for RealNet {
    type Engine = WfpEngine;

    fn alias_to_luid(&mut self, alias: &str) -> Result<u64, Code> {
        iphelper::alias_to_luid(alias)
    }

    fn index_to_luid(&mut self, index: u32) -> Result<u64, Code> {
        iphelper::index_to_luid(index)
    }

    fn interface_guid(&mut self, alias: &str) -> Result<String, Code> {
        iphelper::interface_guid(alias)
    }

    fn add_address(&mut self, row: &AddressRow) -> Code {
        iphelper::add_address(row)
    }

    fn del_address(&mut self, row: &AddressRow) -> Code {
        iphelper::del_address(row)
    }

    fn add_route(&mut self, row: &RouteRow) -> Code {
        iphelper::add_route(row)
    }

    fn del_route(&mut self, row: &RouteRow) -> Code {
        iphelper::del_route(row)
    }

    fn flush_neighbors(&mut self, family: i16, index: u32) -> Code {
        iphelper::flush_neighbors(family, index)
    }

    fn interface_metric(&mut self, index: u32, family: i16) -> Result<u32, Code> {
        iphelper::interface_metric(index, family)
    }

    fn set_interface_metric(&mut self, index: u32, family: i16, metric: u32) -> Code {
        iphelper::set_interface_metric(index, family, metric)
    }

    fn set_mtu(&mut self, index: u32, family: i16, mtu: u32) -> Code {
        iphelper::set_mtu(index, family, mtu)
    }

    fn wfp_open(&mut self, filters: &[Filter]) -> Result<WfpEngine, Code> {
        firewall::open(filters)
    }

    fn wfp_close(&mut self, engine: WfpEngine) {
        firewall::close(engine);
    }

    fn run_helper(&mut self, exe: &str, cmdline: &str, timeout: Duration) -> Code {
        helper::run(exe, cmdline, timeout)
    }

    fn system_dir(&mut self) -> String {
        helper::system_dir()
    }

    fn notify_dns(&mut self, gpol: bool) {
        dns::notify(gpol);
    }

    fn register_dns(&mut self) -> Code {
        dns::register()
    }

    fn other_interfaces_dns(&mut self, except_alias: &str) -> Vec<InterfaceDns> {
        dns::other_interfaces(self, except_alias)
    }
}
