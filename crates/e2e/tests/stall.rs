//! No user can stall the service: a request whose checks block on a mount that never
//! answers delays only that request (issue: reliability of the Linux service). Run as root:
//! `cargo test -p openvpnserv-e2e --test stall -- --ignored --test-threads=1`.

use std::time::{Duration, Instant};

use openvpnserv_e2e::fixture::{as_user, start, Fixture};
use openvpnserv_e2e::hangfs::HangFs;
use openvpnserv_e2e::users::TestUser;
use openvpnserv_proto::codes::WAIT_TIMEOUT;
use openvpnserv_proto::Reply;

/// How long the service waits for a blocked check (`offload::LIMIT`), plus a margin.
const LIMIT: Duration = Duration::from_secs(10);

#[test]
#[ignore = "needs root: mounts a FUSE file system, creates users and runs the service (e2e stage)"]
fn a_config_path_on_a_hung_mount_stalls_only_its_own_request() {
    let fx = Fixture::new("");
    let fs = HangFs::mount(&fx.dir.path);
    let (mallory, alice) = (TestUser::create(&[]), TestUser::create(&[]));
    fx.config("a.ovpn", "exit 0");

    let hung = {
        let config = fs.mountpoint.join("hang/x.conf").display().to_string();
        let what = start(&fx.config_dir(), &format!("--config {config}"), "");
        let socket = fx.service.socket.clone();
        let cmd = openvpnserv_e2e::service::probe_command(&mallory);
        std::thread::spawn(move || {
            let sent = Instant::now();
            let t = openvpnserv_e2e::service::probe(cmd, &socket, &what, LIMIT * 2, true);
            (t, sent.elapsed())
        })
    };
    // Mallory's check is now stuck in the mount.
    std::thread::sleep(Duration::from_millis(500));

    let t = as_user(&fx, &alice, &start(&fx.config_dir(), "--config a.ovpn", ""));
    t.pid();
    let ms = t.first_reply_ms.expect("a reply");
    assert!(
        ms < 100,
        "another user's request was answered after {ms} ms while one request hung"
    );

    let (t, took) = hung.join().unwrap();
    match t.first() {
        Reply::Error { code, text, .. } => {
            assert_eq!(*code, WAIT_TIMEOUT, "{t:?}");
            assert!(text.contains("did not finish within"), "{text}");
        }
        other @ Reply::Pid(_) => panic!("the hung request started openvpn: {other:?}"),
    }
    assert!(
        took < LIMIT + Duration::from_secs(2),
        "the hung request was answered after {took:?}"
    );
    assert!(fx
        .service
        .log()
        .contains("checking the request did not finish"));
    drop(fs);
}
