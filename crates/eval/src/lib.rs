//! phiguard-eval
