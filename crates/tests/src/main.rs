//! A copy of the `nas` entry point, so the end-to-end tests of this crate can run the real command line
//! (Cargo gives tests the path of their own package's binaries only).
fn main() {
    nas_cli::main()
}
