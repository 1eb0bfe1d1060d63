//! # phiguard-gateway
