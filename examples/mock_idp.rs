//! The mock identity provider + API as a program, for the C, Python and C# tests:
//! `cargo run --release --example mock_idp -- --port 0` prints its base URL on stdout.
fn main() {
    tokenward_mock::cli_main()
}
