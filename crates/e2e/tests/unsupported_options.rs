//! Options the Linux service cannot honour are refused before openvpn starts, with a message
//! that names the option and where it is, instead of a session that connects and silently
//! lacks them (the issue on openvpn 2.7 on Linux). Run as root by the e2e stage:
//! `cargo test -p openvpnserv-e2e --test unsupported_options -- --ignored --test-threads=1`.

use openvpnserv_e2e::fixture::{as_user, refusal_text, start, Fixture};
use openvpnserv_e2e::users::TestUser;

#[test]
#[ignore = "needs root: creates users and runs the service (e2e stage)"]
fn each_option_the_service_cannot_honour_is_refused_by_name() {
    let fx = Fixture::new("");
    let user = TestUser::create(&[]);
    for (i, (line, named)) in [
        ("dev tap0", "dev tap0"),
        ("dev-type tap", "dev-type tap"),
        ("route-table 100", "route-table 100"),
        (
            "dns-updown /usr/local/bin/my-dns",
            "dns-updown /usr/local/bin/my-dns",
        ),
        ("dns-updown force", "dns-updown force"),
        ("dns-updown disable", "dns-updown disable"),
        ("user nobody", "user nobody"),
        ("group nogroup", "group nogroup"),
        ("chroot /var/empty", "chroot /var/empty"),
        ("daemon", "daemon"),
    ]
    .into_iter()
    .enumerate()
    {
        let name = format!("c{i}.ovpn");
        let record = fx.config(&name, &format!("{line}\nexit 0"));
        let t = as_user(
            &fx,
            &user,
            &start(&fx.config_dir(), &format!("--config {name}"), ""),
        );
        let text = refusal_text(&t);
        assert!(text.contains(&format!("{named:?}")), "{line}: {text}");
        assert!(
            text.contains(&format!(
                "line 2 of {}",
                fx.config_dir.join(&name).display()
            )),
            "{text}"
        );
        assert!(
            text.contains("cannot be used through openvpnserv"),
            "{text}"
        );
        assert!(!record.exists(), "{line}: openvpn was started");
    }
    // On the command line too (administrators may pass any option).
    let record = fx.config("ok.ovpn", "exit 0");
    let root = openvpnserv_e2e::service::root_probe_command();
    let t = openvpnserv_e2e::service::probe(
        root,
        &fx.service.socket,
        &start(&fx.config_dir(), "--config ok.ovpn --dev-type tap", ""),
        std::time::Duration::from_secs(5),
        false,
    );
    let text = refusal_text(&t);
    assert!(
        text.contains("\"dev-type tap\" (the command line)"),
        "{text}"
    );
    assert!(!record.exists());
    // And a config without them starts.
    as_user(&fx, &user, &start(&fx.config_dir(), "--config ok.ovpn", "")).pid();
}
