//! The standard middleware stack (`rgi_tests::stack`) as a program: every gateway, by flags.
use std::process::ExitCode;

fn main() -> ExitCode {
    let dir = rgi_tests::stack::stack_dir();
    rgi_servers::run(rgi_tests::stack::stack(&dir))
}
