//! Ready-made CSV mappings for the public datasets iob is evaluated on (`mappings/*.toml`),
//! compiled into the binary so `iob import FILE --preset NAME` needs no other file.

/// `(name, TOML mapping)` of every preset.
pub const PRESETS: &[(&str, &str)] = &[
    (
        "uci-online-retail",
        include_str!("../../mappings/uci-online-retail.toml"),
    ),
    (
        "uci-online-retail-ii",
        include_str!("../../mappings/uci-online-retail-ii.toml"),
    ),
    ("yoochoose", include_str!("../../mappings/yoochoose.toml")),
    (
        "movielens-100k",
        include_str!("../../mappings/movielens-100k.toml"),
    ),
    (
        "fitbit-hourly-steps",
        include_str!("../../mappings/fitbit-hourly-steps.toml"),
    ),
    (
        "fitbit-hourly-calories",
        include_str!("../../mappings/fitbit-hourly-calories.toml"),
    ),
    (
        "fitbit-hourly-intensity",
        include_str!("../../mappings/fitbit-hourly-intensity.toml"),
    ),
    (
        "fitbit-daily-sleep",
        include_str!("../../mappings/fitbit-daily-sleep.toml"),
    ),
    (
        "fitbit-weight",
        include_str!("../../mappings/fitbit-weight.toml"),
    ),
    (
        "fitbit-daily-activity",
        include_str!("../../mappings/fitbit-daily-activity.toml"),
    ),
];

/// The TOML mapping of preset `name`.
pub fn preset(name: &str) -> Option<&'static str> {
    PRESETS.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::CsvMapping;

    #[test]
    fn every_preset_parses() {
        for (name, text) in PRESETS {
            let m =
                CsvMapping::from_toml_str(text).unwrap_or_else(|e| panic!("preset {name}: {e}"));
            m.check().unwrap_or_else(|e| panic!("preset {name}: {e}"));
        }
        assert!(preset("nope").is_none());
    }
}
