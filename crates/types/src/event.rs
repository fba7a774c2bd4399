//! Change events pushed to WebSocket subscribers when discovery sees a difference.

use serde::{Deserialize, Serialize};

use crate::Model;

/// One change observed between two refreshes, serialised as
/// `{"type": "model_added", "model": {...}, "timestamp": "..."}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ModelEvent {
    ModelAdded {
        model: Box<Model>,
        timestamp: String,
    },
    ModelUpdated {
        model: Box<Model>,
        timestamp: String,
    },
    ModelRemoved {
        model: Box<Model>,
        timestamp: String,
    },
    ProviderStatusChanged {
        provider: String,
        /// `active`, `error` or `disabled`.
        status: String,
        previous_status: Option<String>,
        error: Option<String>,
        timestamp: String,
    },
}

impl ModelEvent {
    /// The provider this event is about (used by `?provider=` filters).
    pub fn provider(&self) -> &str {
        match self {
            ModelEvent::ModelAdded { model, .. }
            | ModelEvent::ModelUpdated { model, .. }
            | ModelEvent::ModelRemoved { model, .. } => &model.provider,
            ModelEvent::ProviderStatusChanged { provider, .. } => provider,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            ModelEvent::ModelAdded { .. } => "model_added",
            ModelEvent::ModelUpdated { .. } => "model_updated",
            ModelEvent::ModelRemoved { .. } => "model_removed",
            ModelEvent::ProviderStatusChanged { .. } => "provider_status_changed",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tagged_shape() {
        let ev = ModelEvent::ModelAdded {
            model: Box::new(Model::new("openai", "new-model")),
            timestamp: "2024-01-15T10:30:00Z".into(),
        };
        let v = serde_json::to_value(&ev).expect("serialise");
        assert_eq!(v["type"], "model_added");
        assert_eq!(v["model"]["id"], "new-model");
        assert_eq!(v["model"]["provider"], "openai");
        assert_eq!(ev.provider(), "openai");
    }
}
