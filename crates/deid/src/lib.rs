//! phiguard-deid
