//! A real openvpn 2.6 server in a test namespace, and the matching client config
//! (design §6: two self-signed EC certificates, `peer-fingerprint` on both sides, `dh none`).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::netns::{run, Netns, SERVER_IP};
use crate::service::TestDir;

/// What the server pushes, per test.
#[derive(Debug, Clone, Default)]
pub struct Pushes {
    /// `redirect-gateway def1` (full tunnel).
    pub def1: bool,
    /// `redirect-gateway def1 ipv6`.
    pub def1_ipv6: bool,
    /// `--dns` servers and domains instead of `dhcp-option`.
    pub dns_option: bool,
    /// `topology net30` instead of `subnet`.
    pub net30: bool,
    /// More server config lines (e.g. `auth-user-pass-verify`).
    pub extra: String,
    /// Push no DNS servers or domains at all.
    pub no_dns: bool,
}

/// A certificate and key pair.
#[derive(Debug, Clone)]
pub struct Cert {
    /// Certificate path.
    pub cert: PathBuf,
    /// Key path.
    pub key: PathBuf,
    /// SHA-256 fingerprint.
    pub fingerprint: String,
}

/// Makes a self-signed prime256v1 certificate named `cn` in `dir`.
pub fn make_cert(dir: &Path, cn: &str) -> Cert {
    let cert = dir.join(format!("{cn}.crt"));
    let key = dir.join(format!("{cn}.key"));
    run(
        "openssl",
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            &format!("/CN={cn}"),
            "-keyout",
            key.to_str().unwrap(),
            "-out",
            cert.to_str().unwrap(),
        ],
    );
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("chmod key");
    let fp = run(
        "openssl",
        &[
            "x509",
            "-in",
            cert.to_str().unwrap(),
            "-noout",
            "-fingerprint",
            "-sha256",
        ],
    );
    let fingerprint = fp.trim().rsplit('=').next().unwrap_or_default().to_owned();
    Cert {
        cert,
        key,
        fingerprint,
    }
}

/// A running openvpn server; killed (by pid) on drop.
#[derive(Debug)]
pub struct Server {
    child: Child,
    /// Its log.
    pub log: PathBuf,
    /// The client's certificate (the server trusts its fingerprint).
    pub client_cert: Cert,
    /// The server's certificate.
    pub server_cert: Cert,
}

impl Server {
    /// Starts the server in `ns` with `pushes`, and waits until it listens.
    pub fn start(ns: &Netns, dir: &TestDir, pushes: &Pushes) -> Self {
        let server_cert = make_cert(&dir.path, "server");
        let client_cert = make_cert(&dir.path, "client");
        let mut conf = format!(
            "dev tun\nproto udp\nport 1194\nlocal {SERVER_IP}\ndh none\ncert {}\nkey {}\npeer-fingerprint {}\n\
             server-ipv6 fd00:8::/64\nverb 4\nkeepalive 10 60\nduplicate-cn\n\
             push \"route 10.9.0.0 255.255.255.0\"\npush \"route-ipv6 fd00:9::/64\"\n",
            server_cert.cert.display(),
            server_cert.key.display(),
            client_cert.fingerprint,
        );
        if pushes.net30 {
            conf += "topology net30\nserver 10.10.0.0 255.255.255.0\n";
        } else {
            conf += "topology subnet\nserver 10.8.0.0 255.255.255.0\n";
        }
        if pushes.no_dns {
            // Addresses and routes only.
        } else if pushes.dns_option {
            conf += "push \"dns server 1 address 10.8.0.53\"\npush \"dns server 1 address fd00:8::53\"\n\
                     push \"dns server 1 resolve-domains lab.example\"\npush \"dns search-domains corp.example\"\n";
        } else {
            conf += "push \"dhcp-option DNS 10.8.0.53\"\npush \"dhcp-option DNS6 fd00:8::53\"\n\
                     push \"dhcp-option DOMAIN corp.example\"\n";
        }
        if pushes.def1_ipv6 {
            conf += "push \"redirect-gateway def1 ipv6\"\n";
        } else if pushes.def1 {
            conf += "push \"redirect-gateway def1\"\n";
        }
        conf += &pushes.extra;
        let path = dir.write("server.conf", &conf, 0o600);
        let log = dir.join("server.log");
        let child = ns
            .command(server_binary())
            .args([
                "--config",
                path.to_str().unwrap(),
                "--log",
                log.to_str().unwrap(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the openvpn server");
        let server = Self {
            child,
            log,
            client_cert,
            server_cert,
        };
        server.wait_for("Initialization Sequence Completed", Duration::from_secs(15));
        server
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits for `text` in the log.
    pub fn wait_for(&self, text: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.log().contains(text) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the openvpn server never logged {text:?}:\n{}", self.log());
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes the client config `name` into `config_dir` for `server`, with the client's key
/// copied next to it and owned by `uid` (openvpn, running as the user, must read it and
/// refuses keys others can read). `extra` lines are appended.
pub fn client_config(
    config_dir: &Path,
    name: &str,
    server: &Server,
    uid: u32,
    log: &Path,
    extra: &str,
) -> PathBuf {
    let key = config_dir.join(format!("{name}.key"));
    let cert = config_dir.join(format!("{name}.crt"));
    std::fs::copy(&server.client_cert.key, &key).expect("copy key");
    std::fs::copy(&server.client_cert.cert, &cert).expect("copy cert");
    nix::unistd::chown(&key, Some(nix::unistd::Uid::from_raw(uid)), None).expect("chown key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    std::fs::set_permissions(&cert, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let text = format!(
        "client\ndev tun\nproto udp\nremote {SERVER_IP} 1194\nnobind\ncert {}\nkey {}\npeer-fingerprint {}\n\
         verb 4\nlog {}\n{extra}\n",
        cert.display(),
        key.display(),
        server.server_cert.fingerprint,
        log.display()
    );
    let path = config_dir.join(name);
    std::fs::write(&path, text).expect("write client config");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    path
}

/// The openvpn the service starts for the user: `$OPENVPN`, else this machine's
/// `/usr/sbin/openvpn` (2.6.14 on Debian 12; `scripts/openvpn27.sh` provides Debian 13's 2.7).
pub fn client_binary() -> PathBuf {
    std::env::var_os("OPENVPN").map_or_else(|| PathBuf::from("/usr/sbin/openvpn"), PathBuf::from)
}

/// The openvpn the tests' server runs: `$OPENVPN_SERVER`, else the client's.
pub fn server_binary() -> PathBuf {
    std::env::var_os("OPENVPN_SERVER").map_or_else(client_binary, PathBuf::from)
}

/// The client openvpn's version, `(major, minor)`, from `openvpn --version`.
pub fn client_version() -> (u32, u32) {
    let out = Command::new(client_binary())
        .arg("--version")
        .output()
        .expect("run openvpn --version");
    let text = String::from_utf8_lossy(&out.stdout);
    let version = text.split_whitespace().nth(1).unwrap_or_default();
    let mut parts = version.split(['.', '_']).map(|p| p.parse().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

/// Whether the client openvpn is 2.7 or later.
pub fn client_is_2_7() -> bool {
    client_version() >= (2, 7)
}

/// Runs `openvpn --version` and says whether this build has `--iproute`.
pub fn has_iproute() -> bool {
    Command::new(client_binary())
        .arg("--version")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("enable_iproute2=yes"))
}
