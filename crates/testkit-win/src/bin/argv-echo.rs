//! Prints its arguments after the program name, one per line (`ARG <text>`, newlines escaped):
//! a C-runtime-style program for the splitter tests (Rust's std follows the Microsoft C/C++
//! rules when it splits its command line).

fn main() {
    for a in std::env::args().skip(1) {
        println!("ARG {}", a.replace('\n', "\\n"));
    }
}
