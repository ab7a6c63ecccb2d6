//! HTTP/2 over every TCP connection.
pub mod hpack;
mod huffman;

#[cfg(test)]
mod hpack_tests;
