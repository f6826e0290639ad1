//! Smithers as a GitHub App.
