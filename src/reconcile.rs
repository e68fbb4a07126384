//! TODO(owner: lead)
