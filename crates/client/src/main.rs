//! `iservice`: start openvpn through the interactive service.

fn main() -> std::process::ExitCode {
    eprintln!("iservice: the client command is not built yet");
    std::process::ExitCode::FAILURE
}
