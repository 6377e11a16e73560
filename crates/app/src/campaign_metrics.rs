//! campaign_metrics (scaffold: being written).
