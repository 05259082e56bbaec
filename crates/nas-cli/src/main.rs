//! The `nas` binary: see the `nas_cli` library.
fn main() {
    nas_cli::main()
}
