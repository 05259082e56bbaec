//! Helpers for the end-to-end tests in `tests/`: run the real `nas` command line on temporary run directories.
#![deny(missing_docs)]
