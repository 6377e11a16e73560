//! Integration tests for textbank-sms: each carrier client against a local
//! server that checks the requests the real API expects and answers like it,
//! and the simulator against a local stand-in for our webhook endpoints.

mod helpers;
mod sim;
mod telnyx;
mod twilio;
