//! One module per subcommand.
pub mod common;
pub mod doctor;
pub mod http;
pub mod manual;
pub mod packets;
pub mod run;
pub mod show;
pub mod tls;
pub mod top;
pub mod wire;
