//! Shared pieces of the bluepods command-line tools.
