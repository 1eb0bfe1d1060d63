//! # phiguard-risk
