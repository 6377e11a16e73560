//! Web sign-in: sessions, CSRF, invites, the login rate limit, page access and the demo.
