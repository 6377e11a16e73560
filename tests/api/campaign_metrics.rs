//! campaign_metrics end-to-end tests (scaffold: being written).
