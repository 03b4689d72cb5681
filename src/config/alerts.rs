//! The collector's `[alerts]` section as written: rules, office grouping,
//! contacts, channels, templates, acknowledgement links and delivery, parsed
//! with unknown keys rejected, with their defaults. What it means is the
//! alert engine's: `collector::alerts::setup` compiles it into the engine's
//! settings (`AlertsConfig`), and anything invalid stops the collector with
//! a [`ConfigError`](super::ConfigError) naming the key
//! (`alerts.rule[1].schedule`, `alerts.channel.mail.from`,
//! `alerts.templates.bn.opened`) and the fix. See `docs/alerts.md` for a
//! commented example.

mod channels;
mod sections;

pub use channels::ChannelSection;
pub use sections::{
    AlertsSection, ContactEntry, DeliverySection, OfficeOfflineSection, RuleSection, TemplateTexts,
    TemplatesSection, default_rules,
};
